//! Sharded pub/sub on a real Redis Cluster of three nodes the test starts
//! itself (`redis-server` and `redis-cli` from PATH): groups spread over
//! the nodes, and a slot migration, which ends a partition's
//! subscriptions without fred noticing, is caught by the probe, repaired
//! and reported as a gap.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use chanx::layer::ChannelLayer;
use chanx_fred::{FredConfig, FredLayer};
use common::*;

/// Three cluster nodes, each owning a third of the slots.
struct Cluster {
    nodes: Vec<RedisServer>,
    dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Cluster {
    async fn start() -> Cluster {
        let ports = [free_port(), free_port(), free_port()];
        let dir = std::env::temp_dir().join(format!("chanx-cluster-{}", ports[0]));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let mut nodes = Vec::new();
        for port in ports {
            let config_file = dir.join(format!("nodes-{port}.conf"));
            let bus = free_port().to_string();
            let args = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                config_file.to_str().expect("a UTF-8 path"),
                "--cluster-port",
                &bus,
                "--cluster-node-timeout",
                "2000",
                "--dir",
                dir.to_str().expect("a UTF-8 path"),
            ];
            nodes.push(RedisServer::start(port, &args).await);
        }
        let cluster = Cluster { nodes, dir };
        let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let mut create = vec!["--cluster", "create"];
        create.extend(addresses.iter().map(String::as_str));
        create.push("--cluster-yes");
        let output = node_cli(ports[0], &create);
        assert!(output.contains("All 16384 slots covered"), "{output}");
        eventually("cluster state ok on every node", || {
            ports
                .iter()
                .all(|port| node_cli(*port, &["cluster", "info"]).contains("cluster_state:ok"))
        })
        .await;
        cluster
    }

    fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|node| node.port).collect()
    }

    fn url(&self) -> String {
        let ports = self.ports();
        format!(
            "redis-cluster://127.0.0.1:{}?node=127.0.0.1:{}&node=127.0.0.1:{}",
            ports[0], ports[1], ports[2]
        )
    }

    /// The shard channels matching `pattern` subscribed on each node.
    fn shard_channels(&self, pattern: &str) -> Vec<BTreeSet<String>> {
        self.ports()
            .into_iter()
            .map(|port| {
                node_cli(port, &["pubsub", "shardchannels", pattern])
                    .lines()
                    .map(str::to_owned)
                    .filter(|line| !line.is_empty())
                    .collect()
            })
            .collect()
    }

    /// `(node id, port)` of the node owning `slot`, per `CLUSTER NODES`.
    fn owner_of(&self, slot: u16) -> (String, u16) {
        let nodes = node_cli(self.ports()[0], &["cluster", "nodes"]);
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let owns = fields.iter().skip(8).any(|range| {
                let (start, end) = range.split_once('-').unwrap_or((range, range));
                matches!((start.parse::<u16>(), end.parse::<u16>()), (Ok(s), Ok(e)) if (s..=e).contains(&slot))
            });
            if owns {
                let port = fields[1]
                    .split(['@', ':'])
                    .nth(1)
                    .and_then(|port| port.parse().ok())
                    .expect("a node address");
                return (fields[0].to_owned(), port);
            }
        }
        panic!("no node owns slot {slot}:\n{nodes}");
    }

    fn node_id(port: u16) -> String {
        node_cli(port, &["cluster", "myid"]).trim().to_owned()
    }

    /// Moves an empty `slot` from its owner to another node, the way
    /// `redis-cli --cluster reshard` does it.
    fn migrate(&self, slot: u16) {
        let (owner_id, owner) = self.owner_of(slot);
        let target = *self
            .ports()
            .iter()
            .find(|port| **port != owner)
            .expect("another node");
        let target_id = Cluster::node_id(target);
        let slot = slot.to_string();
        let steps: [(u16, [&str; 5]); 4] = [
            (
                target,
                ["cluster", "setslot", &slot, "importing", &owner_id],
            ),
            (
                owner,
                ["cluster", "setslot", &slot, "migrating", &target_id],
            ),
            (target, ["cluster", "setslot", &slot, "node", &target_id]),
            (owner, ["cluster", "setslot", &slot, "node", &target_id]),
        ];
        for (port, command) in steps {
            let reply = node_cli(port, &command);
            assert_eq!(reply.trim(), "OK", "{command:?} on {port}");
        }
    }
}

/// `redis-cli` on the node listening on `port`.
fn node_cli(port: u16, args: &[&str]) -> String {
    redis_cli(&format!("redis://127.0.0.1:{port}"), args)
}

async fn sharded_layer(url: &str, prefix: &str) -> FredLayer {
    let config = FredConfig::new(url)
        .prefix(prefix)
        .sharded(8)
        .probe_interval(Some(Duration::from_millis(200)))
        .connect_timeout(Duration::from_secs(3))
        .command_timeout(Duration::from_secs(5))
        .max_reconnect_delay(Duration::from_millis(500));
    within("connect", FredLayer::connect(config))
        .await
        .expect("a layer on the cluster")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_groups_span_the_cluster_and_survive_a_slot_migration() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("chanx_fred=debug")
        .try_init();
    let cluster = Cluster::start().await;
    let url = cluster.url();
    let prefix = unique_prefix("cluster");
    let (a, b) = (
        sharded_layer(&url, &prefix).await,
        sharded_layer(&url, &prefix).await,
    );
    let (ch_b, inbox_b) = b.new_channel().await.expect("channel");
    let groups: Vec<String> = (0..16).map(|n| format!("g{n}")).collect();
    within("join", b.join_groups(&ch_b, &groups))
        .await
        .expect("join");

    // Group channels live on more than one node, all of them subscribed.
    let group_pattern = format!("{prefix}:*:g:*");
    let per_node = cluster.shard_channels(&group_pattern);
    assert!(
        per_node
            .iter()
            .filter(|channels| !channels.is_empty())
            .count()
            >= 2,
        "groups spread over the nodes: {per_node:?}"
    );
    let all: BTreeSet<String> = per_node.into_iter().flatten().collect();
    assert_eq!(all.len(), groups.len(), "{all:?}");

    // A group send reaches the member on the other layer, for every group;
    // channel sends cross layers too.
    for (n, group) in groups.iter().enumerate() {
        within("send", a.group_send(group, event(n as u64)))
            .await
            .expect("send");
    }
    let mut received = BTreeSet::new();
    for _ in &groups {
        received.insert(next(&inbox_b).await);
    }
    assert_eq!(received, (0..16).collect());
    within("send", a.send(&ch_b, event(100)))
        .await
        .expect("send");
    assert_eq!(next(&inbox_b).await, 100);
    assert_eq!(b.gaps_detected(), 0);

    // Move g0's slot to another node. Redis ends the subscriptions of that
    // slot with an unsolicited SUNSUBSCRIBE, which fred drops.
    let g0 = all
        .iter()
        .find(|channel| channel.ends_with(":g:g0"))
        .expect("g0's channel")
        .clone();
    let slot: u16 = node_cli(cluster.ports()[0], &["cluster", "keyslot", &g0])
        .trim()
        .parse()
        .expect("a slot number");
    cluster.migrate(slot);

    // The probe notices, the layer subscribes again (on the new owner),
    // tells g0's member it may have lost messages, and delivery resumes.
    assert!(
        resumes_after_gap(&a, "g0", &inbox_b).await,
        "g0's member was told about the gap before delivery resumed"
    );
    assert!(b.gaps_detected() >= 1);
    let (_, new_owner) = cluster.owner_of(slot);
    let on_new_owner = node_cli(new_owner, &["pubsub", "shardnumsub", &g0]);
    assert!(on_new_owner.trim().ends_with('1'), "{on_new_owner}");

    // Leaving unsubscribes on every node.
    within("leave", b.leave_groups(&ch_b, &groups))
        .await
        .expect("leave");
    eventually("group channels unsubscribed", || {
        cluster
            .shard_channels(&group_pattern)
            .iter()
            .all(BTreeSet::is_empty)
    })
    .await;
}
