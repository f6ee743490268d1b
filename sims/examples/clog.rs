// Debug aid: does a TCP connection recover after clog_node/unclog_node?
#[cfg(madsim)]
fn main() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
    rt.block_on(async {
        let h = madsim::runtime::Handle::current();
        let b = h
            .create_node()
            .name("b")
            .ip("10.0.0.2".parse().unwrap())
            .init(|| async {
                let l = tokio::net::TcpListener::bind("10.0.0.2:9000")
                    .await
                    .unwrap();
                loop {
                    let (mut s, _) = l.accept().await.unwrap();
                    tokio::spawn(async move {
                        let mut buf = [0u8; 1];
                        let start = tokio::time::Instant::now();
                        while s.read_exact(&mut buf).await.is_ok() {
                            println!("{:?} got {}", start.elapsed(), buf[0]);
                        }
                    });
                }
            })
            .build();
        let _a = h
            .create_node()
            .name("a")
            .ip("10.0.0.1".parse().unwrap())
            .init(|| async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let mut s = tokio::net::TcpStream::connect("10.0.0.2:9000")
                    .await
                    .unwrap();
                for i in 0..60u8 {
                    s.write_all(&[i]).await.unwrap();
                    s.flush().await.unwrap();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
            .build();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        madsim::net::NetSim::current().clog_node(b.id());
        tokio::time::sleep(Duration::from_millis(2500)).await;
        madsim::net::NetSim::current().unclog_node(b.id());
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
}
#[cfg(not(madsim))]
fn main() {}
