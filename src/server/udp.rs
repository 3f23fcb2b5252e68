//! The UDP loop: one blocking socket per thread, buffers reused for every packet.

use std::net::{SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

use super::answer::{MAX_MESSAGE, answer_from};
use super::{SharedHealth, SharedSnapshot};
use crate::zone::Transport;

/// A UDP socket with SO_REUSEPORT, so each thread has its own and the kernel spreads load.
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

pub fn serve(socket: UdpSocket, shared: SharedSnapshot, health: SharedHealth) {
    let mut request = [0u8; MAX_MESSAGE];
    let mut response = vec![0u8; MAX_MESSAGE];
    loop {
        let (len, peer) = match socket.recv_from(&mut request) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("udp receive: {e}");
                continue;
            }
        };
        let snapshot = shared.load();
        let view = health.load();
        if let Some(n) = answer_from(
            &snapshot,
            &view,
            &request[..len],
            &mut response,
            Transport::Udp,
            peer.ip(),
        ) && let Err(e) = socket.send_to(&response[..n], peer)
        {
            tracing::debug!("udp send to {peer}: {e}");
        }
    }
}
