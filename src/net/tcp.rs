//! DNS over TCP (RFC 7766): length-prefixed messages, several per connection, pipelined
//! queries answered in order, and limits that keep abusive clients from holding the server:
//! connections in total and per client, an idle timeout between queries, and a deadline for
//! a query once its first byte arrived (slowloris).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::dns::{MAX_MESSAGE, Transport};
use crate::engine::{self, Request, SharedHealth, SharedSnapshot};

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

/// Request buffer a connection starts with (most queries are far smaller).
const INITIAL_REQUEST_BUF: usize = 512;

/// TCP limits, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_client: usize,
    pub idle: Duration,
    pub query: Duration,
}

/// Shared by every TCP listener: the connection budget and the shutdown signal.
pub struct Tcp {
    pub limits: Limits,
    slots: Arc<Semaphore>,
    per_client: Mutex<HashMap<IpAddr, usize>>,
    shutdown: watch::Receiver<bool>,
    settings: super::settings::SharedSettings,
}

impl Tcp {
    pub fn new(
        limits: Limits,
        shutdown: watch::Receiver<bool>,
        settings: super::settings::SharedSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            limits,
            slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            per_client: Mutex::new(HashMap::new()),
            shutdown,
            settings,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.limits.max_connections.max(1) - self.slots.available_permits()
    }

    fn claim_client(&self, ip: IpAddr) -> bool {
        let mut map = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= self.limits.max_per_client.max(1) {
            return false;
        }
        *n += 1;
        true
    }

    fn release_client(&self, ip: IpAddr) {
        let mut map = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }
}

pub async fn serve(
    listener: TcpListener,
    tcp: Arc<Tcp>,
    shared: SharedSnapshot,
    health: SharedHealth,
) {
    let mut shutdown = tcp.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return, // stop accepting; open connections finish
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("tcp accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Over the limits: close at once rather than queue (the client retries elsewhere).
        let Ok(permit) = tcp.slots.clone().try_acquire_owned() else {
            tracing::debug!("tcp {peer}: connection limit reached");
            continue;
        };
        if !tcp.claim_client(peer.ip()) {
            tracing::debug!("tcp {peer}: per-client connection limit reached");
            continue;
        }
        let tcp = tcp.clone();
        let shared = shared.clone();
        let health = health.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, peer, &tcp, shared, health).await {
                tracing::debug!("tcp {peer}: {e}");
            }
            tcp.release_client(peer.ip());
            drop(permit);
        });
    }
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    tcp: &Tcp,
    shared: SharedSnapshot,
    health: SharedHealth,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut shutdown = tcp.shutdown.clone();
    // Queries are small: the request buffer grows (once) only for a larger one, so a
    // thousand idle connections do not each hold 64 KiB for it. Responses are written into
    // the worker thread's scratch buffer and kept, until sent, in one that fits them.
    let mut request = vec![0u8; INITIAL_REQUEST_BUF];
    let mut response: Vec<u8> = Vec::new();
    let mut entropy = super::clock::entropy_seed();
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        // Between queries: wait for the first byte, at most the idle timeout, and stop
        // waiting when the server shuts down.
        let mut len = [0u8; 2];
        let first = tokio::select! {
            r = tokio::time::timeout(tcp.limits.idle, stream.read(&mut len[..1])) => r,
            _ = shutdown.changed() => return Ok(()),
        };
        match first {
            Err(_) => return Ok(()), // idle: close quietly
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
        // Once a query has begun, all of it must arrive within the query deadline.
        let rest = async {
            stream.read_exact(&mut len[1..]).await?;
            let n = u16::from_be_bytes(len) as usize;
            if request.len() < n {
                request.resize(n, 0);
            }
            stream.read_exact(&mut request[..n]).await?;
            Ok::<usize, std::io::Error>(n)
        };
        let n = tokio::time::timeout(tcp.limits.query, rest)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "slow query"))??;
        if crate::engine::transfer::is_transfer(&request[..n]) {
            // AXFR/IXFR: several messages, from a snapshot held for the whole transfer.
            let snapshot = shared.load_full();
            super::xfr::serve(
                &mut stream,
                snapshot,
                &request[..n],
                peer.ip(),
                tcp.limits.query,
            )
            .await?;
            continue;
        }
        entropy = entropy.wrapping_add(super::clock::ENTROPY_STEP);
        let query = Request::new(&request[..n], peer.ip(), Transport::Tcp)
            .at(super::clock::coarse_now())
            .with_entropy(entropy);
        let answered = SCRATCH.with(|scratch| {
            let mut buf = scratch.borrow_mut();
            let (snapshot, view) = (shared.load(), health.load());
            let out = engine::answer(&snapshot, &view, None, &query, &mut buf[2..])?;
            if let Some(log) = &tcp.settings.load().query_log {
                log.offer_shared(peer.ip(), Transport::Tcp, &request[..n], &buf[2..2 + out]);
            }
            buf[..2].copy_from_slice(&(out as u16).to_be_bytes());
            response.clear();
            response.extend_from_slice(&buf[..out + 2]);
            Some(())
        });
        if answered.is_none() {
            // Nothing to say to a message we cannot parse: end the connection.
            return Ok(());
        }
        tokio::time::timeout(tcp.limits.query, stream.write_all(&response))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "slow reader"))??;
        // A rare large answer is not kept for the rest of a long idle connection.
        if response.capacity() > KEEP_RESPONSE_BUF {
            response = Vec::new();
        }
    }
}

thread_local! {
    /// Each runtime worker thread's response buffer: an answer is written here
    /// (synchronously, no await in between) and copied into the connection's own,
    /// right-sized buffer, so an idle connection holds no 64 KiB buffer.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; MAX_MESSAGE + 2]);
}

/// A connection's response buffer above this size is let go after the answer is sent.
const KEEP_RESPONSE_BUF: usize = 4096;
