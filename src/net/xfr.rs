//! The transfer loop: an AXFR/IXFR request on a TCP connection is answered with the
//! messages the engine produces (`engine::transfer`), each written with a deadline.
//!
//! A transfer runs on the connection's task with its own `Arc` of the snapshot, so a reload
//! during a transfer does not mix versions.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::clock::unix_now;
use crate::dns::name::to_text;
use crate::engine::Snapshot;
use crate::engine::transfer::{Start, start};

/// Answers a transfer request on `stream`: one or more length-prefixed messages.
pub async fn serve<W: AsyncWrite + Unpin>(
    stream: &mut W,
    snapshot: Arc<Snapshot>,
    request: &[u8],
    peer: IpAddr,
    write_timeout: Duration,
) -> std::io::Result<()> {
    let mut transfer = match start(&snapshot, request, peer, unix_now()) {
        Start::Nothing => return Ok(()),
        Start::One(msg) => {
            return write(stream, &msg, write_timeout).await;
        }
        Start::Zone(t) => t,
    };
    let started = std::time::Instant::now();
    while let Some(msg) = transfer.next_message(&snapshot, unix_now()) {
        write(stream, &msg, write_timeout).await?;
    }
    tracing::info!(
        zone = %to_text(snapshot.zones.zones()[transfer.zone].origin()),
        %peer,
        serial = snapshot.zones.zones()[transfer.zone].serial(),
        records = transfer.records,
        messages = transfer.messages,
        ms = started.elapsed().as_millis() as u64,
        kind = match (transfer.ixfr, transfer.incremental.is_some()) {
            (true, true) => "IXFR",
            (true, false) => "IXFR (full)",
            _ => "AXFR",
        },
        "zone transferred"
    );
    Ok(())
}

async fn write<W: AsyncWrite + Unpin>(
    stream: &mut W,
    msg: &[u8],
    timeout: Duration,
) -> std::io::Result<()> {
    tokio::time::timeout(timeout, stream.write_all(msg))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "slow reader"))?
}
