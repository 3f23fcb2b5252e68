//! DNS over TCP (RFC 7766): length-prefixed messages, several per connection, pipelined
//! queries answered in order, and an idle timeout.

use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::answer::{MAX_MESSAGE, answer_from};
use super::{SharedHealth, SharedSnapshot};
use crate::zone::Transport;

pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

pub async fn serve(
    listener: TcpListener,
    shared: SharedSnapshot,
    health: SharedHealth,
    idle: Duration,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let shared = shared.clone();
                let health = health.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, peer, shared, health, idle).await {
                        tracing::debug!("tcp {peer}: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("tcp accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: SharedSnapshot,
    health: SharedHealth,
    idle: Duration,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut request = vec![0u8; MAX_MESSAGE];
    let mut response = vec![0u8; MAX_MESSAGE + 2];
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(idle, stream.read_exact(&mut len)).await {
            Err(_) => return Ok(()), // idle: close quietly
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(r) => r.map(|_| ())?,
        }
        let len = u16::from_be_bytes(len) as usize;
        // A message already begun must arrive within the idle timeout too.
        tokio::time::timeout(idle, stream.read_exact(&mut request[..len]))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "slow query"))??;
        let snapshot = shared.load();
        let view = health.load();
        let Some(n) = answer_from(
            &snapshot,
            &view,
            &request[..len],
            &mut response[2..],
            Transport::Tcp,
            peer.ip(),
        ) else {
            // Nothing to say to a message we cannot parse: end the connection.
            return Ok(());
        };
        drop(snapshot);
        drop(view);
        response[..2].copy_from_slice(&(n as u16).to_be_bytes());
        stream.write_all(&response[..n + 2]).await?;
    }
}
