//! The floor for a UDP DNS server: answers every datagram with itself, in batches of 32
//! through recvmmsg/sendmmsg, with no DNS work at all. scripts/bench-compare.sh measures
//! CPU and instructions per query of this next to the real servers.
//!
//!     cargo run --release --example udp-echo -- 127.0.0.1:5399
//!
//! Prints `listening on ADDR` once bound; runs until killed. One thread, one socket.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;

const BATCH: usize = 32;
const BUF: usize = 4096;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5399".to_string());
    let socket = UdpSocket::bind(&addr)?;
    println!("listening on {}", socket.local_addr()?);
    let fd = socket.as_raw_fd();

    let mut bufs = vec![0u8; BATCH * BUF];
    // SAFETY: all-zero bytes are valid for these plain C structs.
    let mut addrs: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..BATCH {
        iov[i].iov_base = bufs[i * BUF..].as_mut_ptr().cast();
        hdrs[i].msg_hdr.msg_name = (&raw mut addrs[i]).cast();
        hdrs[i].msg_hdr.msg_iov = &raw mut iov[i];
        hdrs[i].msg_hdr.msg_iovlen = 1;
    }
    loop {
        for (h, v) in hdrs.iter_mut().zip(iov.iter_mut()) {
            v.iov_len = BUF;
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        // SAFETY: every header points at live buffers above.
        let got = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if got <= 0 {
            continue;
        }
        let got = got as usize;
        for (i, (h, v)) in hdrs.iter().zip(iov.iter_mut()).take(got).enumerate() {
            // The reply is the datagram itself, to where it came from, marked a response.
            v.iov_len = h.msg_len as usize;
            if v.iov_len > 2 {
                bufs[i * BUF + 2] |= 0x80;
            }
        }
        let mut sent = 0;
        while sent < got {
            // SAFETY: as above; lengths are what was received.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    hdrs[sent..].as_mut_ptr(),
                    (got - sent) as libc::c_uint,
                    0,
                )
            };
            sent += if n <= 0 { 1 } else { n as usize };
        }
    }
}
