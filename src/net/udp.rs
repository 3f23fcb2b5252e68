//! The UDP loop: one blocking `SO_REUSEPORT` socket per thread, `recvmmsg`/`sendmmsg` in
//! batches of [`BATCH`] datagrams, every buffer and message header allocated once per thread.
//!
//! Per batch: one `recvmmsg` (blocks for the first datagram, then takes whatever else is
//! queued), the current snapshot and health view pinned (`published::Reader`: a store and a
//! load each, no reference count), the answers written in place, one `sendmmsg`. The pins
//! are let go before the thread blocks again: an idle thread holds no snapshot that a reload
//! replaced, without a receive timeout (whose timer the kernel would arm and cancel at every
//! blocking receive).
//! Per query: no allocation, no lock, no system call.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

use crate::dns::wire::truncate_to_question;
use crate::dns::{MAX_MESSAGE, Transport};
use crate::engine::cookies;
use crate::engine::rrl::{RateLimiter, Verdict};
use crate::engine::{self, AnswerCache, Request, SharedHealth, SharedSnapshot};
use crate::pages::ZeroedPages;

/// Datagrams per `recvmmsg`/`sendmmsg` call.
pub const BATCH: usize = 32;
/// Largest query read; a longer datagram arrives cut (MSG_TRUNC) and gets a FORMERR.
/// RFC 6891 EDNS payloads top out at 4096 in practice; queries are far smaller.
const REQUEST_BUF: usize = 4096;
/// Room for one response: any UDP payload `max_udp_payload` may allow. Pages that are never
/// written are never resident, so this costs address space, not memory.
const RESPONSE_BUF: usize = MAX_MESSAGE;

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

/// Everything one thread's loop needs, allocated once. The message headers point into the
/// buffers of the same (boxed, never moved) value.
struct Batch {
    requests: ZeroedPages<u8>,
    responses: ZeroedPages<u8>,
    addrs: [libc::sockaddr_storage; BATCH],
    recv_iov: [libc::iovec; BATCH],
    recv_hdrs: [libc::mmsghdr; BATCH],
    send_iov: [libc::iovec; BATCH],
    send_hdrs: [libc::mmsghdr; BATCH],
}

impl Batch {
    fn new() -> Box<Self> {
        // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs for which all-zero
        // bytes are a valid value (null pointers, zero lengths).
        let zeroed = unsafe { std::mem::zeroed::<[libc::mmsghdr; BATCH]>() };
        let mut b = Box::new(Self {
            requests: ZeroedPages::new(BATCH * REQUEST_BUF),
            responses: ZeroedPages::new(BATCH * RESPONSE_BUF),
            // SAFETY: as above.
            addrs: unsafe { std::mem::zeroed() },
            // SAFETY: as above.
            recv_iov: unsafe { std::mem::zeroed() },
            recv_hdrs: zeroed,
            // SAFETY: as above.
            send_iov: unsafe { std::mem::zeroed() },
            send_hdrs: zeroed,
        });
        let b_ref = &mut *b;
        for i in 0..BATCH {
            b_ref.recv_iov[i] = libc::iovec {
                iov_base: b_ref.requests[i * REQUEST_BUF..].as_mut_ptr().cast(),
                iov_len: REQUEST_BUF,
            };
            let h = &mut b_ref.recv_hdrs[i].msg_hdr;
            h.msg_name = (&raw mut b_ref.addrs[i]).cast();
            h.msg_iov = &raw mut b_ref.recv_iov[i];
            h.msg_iovlen = 1;
            b_ref.ready_to_receive(i);
        }
        b
    }

    /// Resets the value-result fields the kernel writes at a `recvmmsg` in header `i`:
    /// once at the start, and then as each datagram is read, so that no loop over the
    /// batch runs for it (one datagram at a time paid ~20 instructions for that loop).
    #[inline(always)]
    fn ready_to_receive(&mut self, i: usize) {
        let h = &mut self.recv_hdrs[i];
        h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        h.msg_hdr.msg_flags = 0;
        h.msg_len = 0;
    }
}

/// The source address of a received datagram.
fn peer_ip(addr: &libc::sockaddr_storage) -> Option<IpAddr> {
    match i32::from(addr.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for AF_INET; sockaddr_storage is large
            // and aligned enough for every sockaddr type.
            let sin =
                unsafe { &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, a sockaddr_in6 for AF_INET6.
            let sin6 =
                unsafe { &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

pub fn serve(
    socket: UdpSocket,
    shared: SharedSnapshot,
    health: SharedHealth,
    thread: usize,
    settings: super::settings::SharedSettings,
    mut cache: Option<AnswerCache>,
) {
    // Rebuilt from `settings` whenever a reload changed them (checked once per batch).
    let mut version = u64::MAX;
    let mut rrl: Option<RateLimiter> = None;
    let mut query_log: Option<super::querylog::Sampler> = None;
    crate::stats::set_thread_slot(thread);
    let fd = socket.as_raw_fd();
    let mut b = Batch::new();
    let started = std::time::Instant::now();
    let mut entropy = super::clock::entropy_seed();
    let (mut snapshots, mut views) = (shared.reader(), health.reader());
    loop {
        // The raw system call: glibc's wrapper is a thread cancellation point, which costs
        // two extra calls per batch and buys nothing here.
        // SAFETY: recv_hdrs holds BATCH valid headers whose buffers live in `b`.
        let got = unsafe {
            libc::syscall(
                libc::SYS_recvmmsg,
                fd,
                b.recv_hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut::<libc::timespec>(),
            )
        };
        if got < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                tracing::debug!("udp receive: {e}");
            }
            continue;
        }
        let got = (got as usize).min(BATCH);

        if super::settings::version() != version {
            let s = settings.load();
            version = s.version;
            rrl = s.rrl.enabled().then(|| RateLimiter::new(s.rrl.clone()));
            query_log = s.query_log.as_ref().map(super::querylog::QueryLog::sampler);
        }
        // One snapshot, health view and (for rate limiting) clock reading per batch.
        let now = if rrl.is_some() {
            started.elapsed().as_secs() as u32
        } else {
            0
        };
        let unix_now = super::clock::coarse_now();
        // Pinned for this batch only: a thread blocked in its receive holds neither.
        let snapshot_guard = snapshots.pin();
        let view_guard = views.pin();
        let (snapshot, view) = (&*snapshot_guard, &*view_guard);
        let mut out = 0usize;
        for i in 0..got {
            let len = (b.recv_hdrs[i].msg_len as usize).min(REQUEST_BUF);
            let peer_len = b.recv_hdrs[i].msg_hdr.msg_namelen;
            b.ready_to_receive(i);
            let Some(source) = peer_ip(&b.addrs[i]) else {
                continue;
            };
            let request = &b.requests[i * REQUEST_BUF..i * REQUEST_BUF + len];
            let response = &mut b.responses[i * RESPONSE_BUF..(i + 1) * RESPONSE_BUF];
            entropy = entropy.wrapping_add(super::clock::ENTROPY_STEP);
            let request = Request::new(request, source, Transport::Udp)
                .at(unix_now)
                .with_entropy(entropy);
            let answered = match cache.as_mut() {
                Some(c) => engine::answer(snapshot, view, Some(c), &request, response),
                None => engine::answer(snapshot, view, None, &request, response),
            };
            let Some(mut n) = answered else {
                continue;
            };
            if let Some(limiter) = rrl.as_mut() {
                match rate_limit(limiter, now, snapshot, &request, &response[..n]) {
                    Verdict::Send => {}
                    Verdict::Drop => continue,
                    // A client that sent a cookie gets BADCOOKIE and a fresh one instead of
                    // TC: it retries verified (RFC 7873 §5.2.3).
                    Verdict::Slip => {
                        n = match cookies::bad_cookie(snapshot.cookies.as_ref(), &request, response)
                        {
                            Some(bad) => bad,
                            None => truncate_to_question(response, n),
                        }
                    }
                }
            }
            let request = request.bytes;
            if let Some(log) = query_log.as_mut() {
                log.offer(source, Transport::Udp, request, &response[..n]);
            }
            b.send_iov[out] = libc::iovec {
                iov_base: response.as_mut_ptr().cast(),
                iov_len: n,
            };
            let h = &mut b.send_hdrs[out].msg_hdr;
            h.msg_name = (&raw mut b.addrs[i]).cast();
            h.msg_namelen = peer_len;
            h.msg_iov = &raw mut b.send_iov[out];
            h.msg_iovlen = 1;
            out += 1;
        }
        send_all(fd, &mut b.send_hdrs[..out]);
    }
}

/// Sends every prepared message; one that fails is skipped (and logged), the rest still go.
fn send_all(fd: libc::c_int, hdrs: &mut [libc::mmsghdr]) {
    let mut sent = 0usize;
    while sent < hdrs.len() {
        let rest = &mut hdrs[sent..];
        // SAFETY: every header points at a live response buffer and peer address.
        let n = unsafe {
            libc::syscall(
                libc::SYS_sendmmsg,
                fd,
                rest.as_mut_ptr(),
                rest.len() as libc::c_uint,
                0 as libc::c_int,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            // The first message of `rest` failed: drop it and go on with the others.
            tracing::debug!("udp send: {e}");
            sent += 1;
        } else {
            sent += n as usize;
        }
    }
}

/// Rate limiting for one response: a source that proved itself with a valid server cookie
/// (it received our answers before, so it is not spoofed) is never limited.
fn rate_limit(
    limiter: &mut RateLimiter,
    now: u32,
    snapshot: &crate::engine::Snapshot,
    request: &engine::Request<'_>,
    response: &[u8],
) -> Verdict {
    if cookies::verified(snapshot.cookies.as_ref(), request, response) {
        return Verdict::Send;
    }
    limiter.judge(now, request.source, request.bytes, response)
}
