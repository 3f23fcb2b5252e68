//! L8, the daemon: builds the runtime, binds the sockets, starts the shells (UDP threads,
//! TCP, the monitor, the API, the query log) around one shared snapshot and health view,
//! and handles signals until it is stopped.
//!
//! UDP runs on plain threads, one `SO_REUSEPORT` socket each, with reused buffers: no task,
//! lock or allocation per query. TCP runs on tokio. Both read the current snapshot through
//! `arc-swap`, which a reload replaces atomically.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::published::Published;

use crate::config::Loaded;
use crate::engine::cache as answer_cache;
use crate::engine::{SharedHealth, SharedSnapshot};
use crate::monitor::Monitor;
use crate::net::{clock, notify, tcp, udp};
use crate::reload;

/// Runs the server until it is stopped. Prints one `listening on` line per address to
/// stdout once every socket is bound (tests and scripts read the actual ports from it).
pub fn run(config_path: PathBuf, loaded: Loaded) -> std::io::Result<()> {
    let server = loaded.server.clone();
    raise_fd_limit();
    let (rendered, rendered_bytes) = loaded.snapshot.static_answers.size();
    let render_ms = loaded.snapshot.static_answers.build_time().as_millis();
    tracing::info!(
        rendered,
        rendered_bytes,
        render_ms,
        "static answers rendered at load"
    );
    // Loading parsed files and built tables: give the scratch memory back before serving.
    reload::release_free_memory();
    // Everything up, with the signatures of a signed zone's dynamic answers.
    let health: SharedHealth = Arc::new(Published::new(loaded.snapshot.initial_health.clone()));
    let shared: SharedSnapshot = Arc::new(Published::new(loaded.snapshot));

    let threads = udp_threads(server.udp_threads);

    // Health checks over HTTPS use rustls with ring; once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("meridian-io")
        .build()?;

    let settings = crate::net::settings::start(&loaded.rrl, loaded.query_log.as_ref())?;
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let tcp_state = tcp::Tcp::new(
        tcp::Limits {
            max_connections: server.tcp_max_connections,
            max_per_client: server.tcp_max_per_client,
            idle: std::time::Duration::from_secs(server.tcp_idle_timeout_secs),
            query: std::time::Duration::from_secs(server.tcp_query_timeout_secs.max(1)),
        },
        shutdown_rx,
        settings.clone(),
    );
    let bound = start_listeners(&server, &runtime, (&shared, &health), &tcp_state, &settings)?;
    let monitor = {
        let _guard = runtime.enter();
        Monitor::start(
            shared.clone(),
            health.clone(),
            loaded.state_file.clone(),
            loaded.cluster.as_ref(),
        )
        .map_err(std::io::Error::other)?
    };
    {
        // Secondaries learn the serials we start with (RFC 1996 NOTIFY, in the background).
        let _guard = runtime.enter();
        notify::send_changed(None, &shared.load_full());
    }
    let reloader = reload::Reloader::new(
        config_path,
        shared.clone(),
        monitor.clone(),
        settings.clone(),
    );
    runtime.spawn(reloader.clone().watch(loaded.watch.clone(), loaded.watched));
    runtime.spawn(tick_clock());
    let api_state = Arc::new(crate::api::ApiState {
        snapshot: shared.clone(),
        monitor: monitor.clone(),
        reloader: reloader.clone(),
        token: loaded.api.token.clone(),
        draining: std::sync::atomic::AtomicBool::new(false),
        settings: settings.clone(),
        census: Default::default(),
    });
    let api_addr = match loaded.api.listen {
        Some(addr) => {
            let listener = runtime.block_on(tokio::net::TcpListener::bind(addr))?;
            let actual = listener.local_addr()?;
            runtime.spawn(crate::api::serve(listener, api_state.clone()));
            Some(actual)
        }
        None => None,
    };

    let sig = {
        let _guard = runtime.enter();
        Signals::register()?
    };
    for addr in &bound {
        println!("meridian: listening on {addr} (udp, tcp)");
    }
    if let Some(a) = api_addr {
        println!("meridian: api on http://{a}");
    }
    tracing::info!(addresses = ?bound, udp_threads = threads, api = ?api_addr, "serving");

    runtime.block_on(async {
        signals(sig, reloader, api_state).await?;
        // Graceful stop: no new TCP connections, open ones finish the query in hand.
        tracing::info!(open_tcp = tcp_state.open(), "shutting down");
        let _ = shutdown_tx.send(true);
        // Out of the fleet first: the others stop counting this instance's votes now.
        if let Some(link) = monitor.leave_fleet() {
            link.wait_left(std::time::Duration::from_secs(1)).await;
        }
        let grace = std::time::Duration::from_secs(server.shutdown_grace_secs);
        let deadline = tokio::time::Instant::now() + grace;
        while tcp_state.open() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tracing::info!("stopped");
        Ok::<(), std::io::Error>(())
    })?;
    // UDP threads block in receive; the process exit ends them.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(())
}

/// The time the query path is handed (TSIG): stored four times a second.
async fn tick_clock() {
    let mut ticks = tokio::time::interval(std::time::Duration::from_millis(250));
    loop {
        ticks.tick().await;
        clock::tick();
    }
}

/// Binds every listen address: its UDP sockets, each served by a thread of its own, and
/// its TCP listener on the runtime. Returns the addresses bound (port 0 resolved).
fn start_listeners(
    server: &crate::config::ServerConfig,
    runtime: &tokio::runtime::Runtime,
    (shared, health): (&SharedSnapshot, &SharedHealth),
    tcp_state: &Arc<tcp::Tcp>,
    settings: &crate::net::settings::SharedSettings,
) -> std::io::Result<Vec<SocketAddr>> {
    let threads = udp_threads(server.udp_threads);
    let mut bound: Vec<SocketAddr> = Vec::new();
    for addr in &server.listen {
        let (udp_sockets, tcp_listener, actual) = bind_pair(*addr, threads)?;
        for (i, sock) in udp_sockets.into_iter().enumerate() {
            let shared = shared.clone();
            let health = health.clone();
            let thread = bound.len() * threads + i;
            let settings = settings.clone();
            let cache_slots = server.answer_cache;
            std::thread::Builder::new()
                .name(format!("meridian-udp-{i}"))
                .spawn(move || {
                    let cache = answer_cache::AnswerCache::new(cache_slots);
                    udp::serve(sock, shared, health, thread, settings, cache)
                })?;
        }
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(tcp_listener)?
        };
        runtime.spawn(tcp::serve(
            listener,
            tcp_state.clone(),
            shared.clone(),
            health.clone(),
        ));
        bound.push(actual);
    }
    Ok(bound)
}

/// UDP threads per listen address: as configured, or one per core for 0.
fn udp_threads(configured: usize) -> usize {
    if configured == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        configured
    }
}

/// Raises the soft limit on open files to the hard limit: every TCP connection is a file
/// descriptor, and the usual soft limit (1024) would cap connections far below
/// `tcp_max_connections`. A failure is logged and the server goes on with what it has.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a valid pointer to our own local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        let e = std::io::Error::last_os_error();
        tracing::warn!("cannot read the open-files limit (RLIMIT_NOFILE): {e}");
        return;
    }
    let old = lim.rlim_cur;
    if old >= lim.rlim_max {
        tracing::debug!(
            soft = old,
            hard = lim.rlim_max,
            "open-files limit already at hard limit"
        );
        return;
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: setrlimit reads one `rlimit` through a valid pointer to our own local.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        let e = std::io::Error::last_os_error();
        tracing::warn!(
            soft = old,
            hard = lim.rlim_max,
            "cannot raise the open-files limit (RLIMIT_NOFILE): {e}; TCP connections are capped near {old}"
        );
        return;
    }
    tracing::debug!(
        old,
        new = lim.rlim_cur,
        "raised the open-files limit (RLIMIT_NOFILE)"
    );
}

/// Binds `threads` UDP sockets and one TCP listener on the same address and port. With
/// port 0 the kernel picks the UDP port and TCP follows it; a busy TCP port retries.
fn bind_pair(
    addr: SocketAddr,
    threads: usize,
) -> std::io::Result<(Vec<std::net::UdpSocket>, std::net::TcpListener, SocketAddr)> {
    let mut last_err = None;
    for _ in 0..20 {
        let first = udp::bind(addr)?;
        let actual = first.local_addr()?;
        match tcp::bind(actual) {
            Ok(listener) => {
                let mut sockets = vec![first];
                for _ in 1..threads {
                    sockets.push(udp::bind(actual)?);
                }
                return Ok((sockets, listener, actual));
            }
            Err(e) if addr.port() == 0 => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| std::io::Error::other("cannot bind")))
}

/// The signals the server handles, registered before it says it is listening (a SIGHUP
/// that arrives early must reload, not kill the process).
struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
    usr2: tokio::signal::unix::Signal,
}

impl Signals {
    fn register() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            hup: signal(SignalKind::hangup())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            usr1: signal(SignalKind::user_defined1())?,
            usr2: signal(SignalKind::user_defined2())?,
        })
    }
}

async fn signals(
    sig: Signals,
    reloader: Arc<reload::Reloader>,
    api: Arc<crate::api::ApiState>,
) -> std::io::Result<()> {
    let Signals {
        mut hup,
        mut term,
        mut int,
        mut usr1,
        mut usr2,
    } = sig;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                let _ = reloader.reload("SIGHUP").await;
            }
            _ = usr1.recv() => {
                api.draining.store(true, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!("drained by SIGUSR1: /health reports down, DNS still answered");
            }
            _ = usr2.recv() => {
                api.draining.store(false, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!("undrained by SIGUSR2");
            }
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
        }
    }
}
