//! Targets for the health checks: an HTTP backend that can fail, stop and come back, an
//! HTTPS server with a self-signed certificate, a silent server, a closed port and a DNS
//! responder.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A stoppable accept loop on a std listener; each connection goes to `handle`.
pub struct Acceptor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    fn spawn(listener: TcpListener, handle: Arc<dyn Fn(TcpStream) + Send + Sync>) -> Self {
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let h = handle.clone();
                        std::thread::spawn(move || h(s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            // The listener drops here: new connections are refused.
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads an HTTP/1.1 request head (the probes never send a body).
fn read_head<R: Read>(r: &mut R) -> bool {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match r.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return false,
        }
        if buf.len() > 16384 {
            return false;
        }
    }
    true
}

fn http_response(status: u16, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// What a test backend answers.
pub struct Behaviour {
    pub status: AtomicU16,
    body: Mutex<String>,
    /// Alternate 200 and 503 on every request, starting with 200.
    alternate: AtomicBool,
    /// Requests answered since the last (re)start.
    served: AtomicU64,
}

/// A tiny thread-per-connection HTTP/1.1 server with a controllable status and body, that
/// can be stopped (connections refused) and restarted on the same address and port.
pub struct Backend {
    addr: SocketAddr,
    pub behaviour: Arc<Behaviour>,
    acceptor: Option<Acceptor>,
}

impl Backend {
    pub fn start(ip: &str) -> Backend {
        let listener = TcpListener::bind((ip, 0)).expect("bind backend");
        let addr = listener.local_addr().expect("addr");
        let behaviour = Arc::new(Behaviour {
            status: AtomicU16::new(200),
            body: Mutex::new("ok".into()),
            alternate: AtomicBool::new(false),
            served: AtomicU64::new(0),
        });
        let mut b = Backend {
            addr,
            behaviour,
            acceptor: None,
        };
        b.serve(listener);
        b
    }

    fn serve(&mut self, listener: TcpListener) {
        let behaviour = self.behaviour.clone();
        self.acceptor = Some(Acceptor::spawn(
            listener,
            Arc::new(move |mut s: TcpStream| {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                if !read_head(&mut s) {
                    return;
                }
                let n = behaviour.served.fetch_add(1, Ordering::SeqCst);
                let status = if behaviour.alternate.load(Ordering::SeqCst) {
                    if n.is_multiple_of(2) { 200 } else { 503 }
                } else {
                    behaviour.status.load(Ordering::SeqCst)
                };
                let body = behaviour.body.lock().unwrap().clone();
                let _ = s.write_all(http_response(status, &body).as_bytes());
            }),
        ));
    }

    pub fn with_status(self, status: u16) -> Self {
        self.behaviour.status.store(status, Ordering::SeqCst);
        self
    }

    pub fn with_body(self, body: &str) -> Self {
        *self.behaviour.body.lock().unwrap() = body.into();
        self
    }

    pub fn alternating(self) -> Self {
        self.behaviour.alternate.store(true, Ordering::SeqCst);
        self
    }

    pub fn ip(&self) -> String {
        self.addr.ip().to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn served(&self) -> u64 {
        self.behaviour.served.load(Ordering::SeqCst)
    }

    /// Closes the listener: connections are refused from now on.
    pub fn stop(&mut self) {
        if let Some(mut a) = self.acceptor.take() {
            a.stop();
        }
    }

    /// Listens again on the same address and port; the served count starts over.
    pub fn restart(&mut self) {
        assert!(self.acceptor.is_none(), "backend still running");
        self.behaviour.served.store(0, Ordering::SeqCst);
        let listener = TcpListener::bind(self.addr).expect("rebind backend on the same port");
        self.serve(listener);
    }
}

/// An HTTPS server with a self-signed certificate (rcgen) for `names`.
pub struct TlsServer {
    pub addr: SocketAddr,
    pub cert_pem: String,
    _acceptor: Acceptor,
}

impl TlsServer {
    pub fn start(ip: &str, names: &[&str]) -> TlsServer {
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(
            names.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .expect("self-signed certificate");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der())),
            )
            .expect("server config");
        let config = Arc::new(config);
        let listener = TcpListener::bind((ip, 0)).expect("bind tls");
        let addr = listener.local_addr().expect("addr");
        let acceptor = Acceptor::spawn(
            listener,
            Arc::new(move |s: TcpStream| {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, s);
                if read_head(&mut tls) {
                    let _ = tls.write_all(http_response(200, "secure ok").as_bytes());
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            }),
        );
        TlsServer {
            addr,
            cert_pem: cert.pem(),
            _acceptor: acceptor,
        }
    }
}

/// Accepts connections and never answers: what a hung backend looks like.
pub fn silent_server(ip: &str) -> (SocketAddr, Acceptor) {
    let listener = TcpListener::bind((ip, 0)).expect("bind silent");
    let addr = listener.local_addr().expect("addr");
    let acceptor = Acceptor::spawn(
        listener,
        Arc::new(|s: TcpStream| {
            // Hold the connection open, silently, longer than any probe's timeout.
            std::thread::sleep(Duration::from_secs(3));
            drop(s);
        }),
    );
    (addr, acceptor)
}

/// A port nothing listens on (bound, then closed).
pub fn closed_port(ip: &str) -> u16 {
    let l = TcpListener::bind((ip, 0)).expect("bind");
    l.local_addr().expect("addr").port()
}

#[derive(Clone, Copy)]
pub enum DnsMode {
    /// NOERROR with one A record.
    Answer,
    /// NOERROR, empty answer.
    Empty,
    Refused,
}

/// A UDP DNS responder that answers every query the same way; stops on drop.
pub struct DnsResponder {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DnsResponder {
    pub fn start(ip: &str, mode: DnsMode) -> DnsResponder {
        let sock = UdpSocket::bind((ip, 0)).expect("bind dns");
        let addr = sock.local_addr().expect("addr");
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                if n < 12 {
                    continue;
                }
                let mut resp = buf[..n].to_vec();
                resp[2] = 0x84 | (buf[2] & 0x01); // QR, AA, RD copied
                resp[3] = match mode {
                    DnsMode::Refused => 5,
                    _ => 0,
                };
                // Drop anything after the question (e.g. an OPT record).
                let mut end = 12;
                while end < n && buf[end] != 0 {
                    end += 1 + buf[end] as usize;
                }
                end += 5;
                resp.truncate(end.min(n));
                resp[6..12].copy_from_slice(&[0, 0, 0, 0, 0, 0]);
                if let DnsMode::Answer = mode {
                    resp[7] = 1;
                    resp.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                    resp.extend_from_slice(&[192, 0, 2, 53]);
                }
                let _ = sock.send_to(&resp, from);
            }
        });
        DnsResponder {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for DnsResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
