//! `chanx_hyper::serve`'s shutdown, over real sockets: connections that
//! finish in the grace period are answered, the others dropped, and
//! `serve` returns.

use std::convert::Infallible;
use std::time::Duration;

use chanx_hyper::{ServeLimits, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long anything here may take before the test counts it as hung (not
/// a timing bound: every wait below ends in milliseconds).
const HUNG: Duration = Duration::from_secs(30);

/// Serves "hello" on a fresh port until `stop` fires; returns the
/// address and the server's task.
async fn start(
    limits: ServeLimits,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("a bound listener");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let hello = |_peer| {
        hyper::service::service_fn(|_request| async {
            Ok::<_, Infallible>(hyper::Response::new("hello".to_owned()))
        })
    };
    let server = tokio::spawn(serve(listener, limits, stopped, hello));
    (addr, stop, server)
}

/// Reads until the peer closes; what it sent.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    tokio::time::timeout(HUNG, stream.read_to_end(&mut received))
        .await
        .expect("the server never closed the connection")
        .expect("reading until the server closes");
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn a_stalled_request_head_is_dropped_when_the_grace_runs_out_and_serve_returns() {
    let limits = ServeLimits {
        header_timeout: Duration::from_secs(600),
        shutdown_grace: Duration::from_millis(50),
        ..ServeLimits::default()
    };
    let (addr, stop, server) = start(limits).await;
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Served meanwhile: the stalled head holds nothing up.
    let mut served = TcpStream::connect(addr).await.unwrap();
    served
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(read_to_close(&mut served).await.ends_with("hello"));

    stop.send(()).unwrap();
    tokio::time::timeout(HUNG, server)
        .await
        .expect("serve did not return after its grace")
        .unwrap();
    assert_eq!(read_to_close(&mut stalled).await, "");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_shutdown() {
    let (addr, stop, server) = start(ServeLimits::default()).await;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0; 256];
    let read = tokio::time::timeout(HUNG, idle.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&answer[..read]).ends_with("hello"));

    stop.send(()).unwrap();
    assert_eq!(read_to_close(&mut idle).await, "");
    tokio::time::timeout(HUNG, server)
        .await
        .expect("serve did not return")
        .unwrap();
}
