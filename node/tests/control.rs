//! The control API's client talks only to the node `control.json` names: a stale file whose
//! port another program listens on now gets neither the token nor an upload.

use std::sync::{Arc, Mutex};

use nineten_node::config::DataDir;
use nineten_node::control::{Client, ControlFile};
use nineten_protocol::identity::Keypair;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_stale_control_file_gets_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(Some(dir.path().join("node")));
    std::fs::create_dir_all(data.path()).unwrap();
    // Another program now listens where the dead node did; it answers everything with 200.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heard = Arc::new(Mutex::new(Vec::<u8>::new()));
    let log = heard.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    log.lock().unwrap().extend_from_slice(&buf[..n]);
                    let reply = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                    if socket.write_all(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let token = "a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0a1b2";
    let file = ControlFile {
        addr,
        token: token.to_string(),
        node: Keypair::from_seed([4; 32]).public(),
    };
    std::fs::write(
        data.path().join("control.json"),
        serde_json::to_vec(&file).unwrap(),
    )
    .unwrap();

    let client = Client::connect(&data).await.unwrap();
    assert!(client.is_none(), "a stale file means no node runs here");
    let heard = String::from_utf8_lossy(&heard.lock().unwrap()).into_owned();
    assert!(heard.contains("GET /v1/hello?nonce="), "{heard}");
    assert!(!heard.contains(token), "the token went out: {heard}");
    assert!(!heard.to_lowercase().contains("authorization"), "{heard}");
}
