//! The TypeScript client generated from the quickstart's AsyncAPI document
//! (`chanx-codegen`), type-checked with tsc in strict mode and run with
//! Node against a running quickstart: echo, chat between two users, a
//! validation error, a refused connection (`tests/typescript/`). Needs
//! Node and npm (TypeScript and `ws` come from the npm registry, pinned by
//! `tests/node/package-lock.json`).
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{Served, node_modules, run_to_success};

/// How long type-checking or the Node client may take.
const BOUND: Duration = Duration::from_secs(180);

#[test]
fn the_generated_typescript_client_type_checks_and_talks_to_the_server() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("typescript-client");
    let modules = node_modules();
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();

    let config = quickstart::Config::from_env(([127, 0, 0, 1], 8000).into(), |_| None).unwrap();
    let app = quickstart::build_app(&config).unwrap();
    let document = chanx::docs::asyncapi(app.server.routes(), "chanx endpoints", "localhost:8000");
    let module = chanx_codegen::typescript(&document).unwrap();
    std::fs::write(src.join("chanx.ts"), module).unwrap();
    let test = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/typescript/client.test.ts");
    std::fs::copy(test, src.join("client.test.ts")).unwrap();
    std::fs::write(
        dir.join("tsconfig.json"),
        r#"{
  "compilerOptions": {
    "strict": true, "noUnusedLocals": true, "noUnusedParameters": true,
    "target": "es2022", "module": "nodenext", "moduleResolution": "nodenext",
    "types": ["node"], "outDir": "dist", "rootDir": "src", "skipLibCheck": false
  },
  "include": ["src"]
}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("package.json"),
        r#"{"private": true, "type": "module"}"#,
    )
    .unwrap();
    // Node resolves packages from the nearest node_modules up the tree.
    let link = dir.join("node_modules");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&modules, &link).unwrap();

    let tsc = modules.join("typescript/bin/tsc");
    run_to_success(
        Command::new("node").arg(&tsc).arg("-p").arg(&dir),
        BOUND,
        None,
    );

    let served = Served::start();
    let base = format!("ws://{}", served.addr);
    let output = run_to_success(
        Command::new("node")
            .arg("dist/client.test.js")
            .arg(&base)
            .current_dir(&dir),
        BOUND,
        Some(&served),
    );
    assert!(output.contains("typescript client: ok"), "{output}");
}
