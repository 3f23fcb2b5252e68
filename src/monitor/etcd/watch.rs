//! The watch half of the etcd client: one `POST /v3/watch` whose response is a stream of
//! newline-separated JSON messages, read as batches of events.

use std::fmt;

use serde::Deserialize;

use super::{EtcdError, Failure, Header, KeyValue, StreamLine, decode, decode_key, error_chain};

/// The largest single message on a watch stream.
const MAX_WATCH_LINE: usize = 4 << 20;

/// A live watch. Dropping it closes the connection, which ends the watch in etcd.
pub struct WatchStream {
    endpoint: String,
    response: reqwest::Response,
    lines: LineBuffer,
    start_revision: i64,
    /// The "created" acknowledgement, handed out by the first `next`.
    pending: Option<WatchBatch>,
    /// Ended (cleanly or not): `next` says None from now on.
    done: bool,
}

impl fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchStream")
            .field("endpoint", &self.endpoint)
            .field("start_revision", &self.start_revision)
            .field("done", &self.done)
            .finish()
    }
}

/// What a watch delivered at once: every change of one or more revisions, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchBatch {
    /// Every change to the watched keys up to this revision has been delivered (or came
    /// before the watch's start): to watch on after a failure, start at `revision + 1`.
    /// With events, the last event's revision; for a progress notification, the store's
    /// revision; for the created acknowledgement, the start revision - 1 (the store's
    /// revision when watching from now).
    pub revision: i64,
    /// Empty for a progress notification (or the created acknowledgement).
    pub events: Vec<WatchEvent>,
}

/// One change of one key.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    Put { key: String, value: Vec<u8> },
    Delete { key: String },
}

/// A watch message, told apart by whether it is the acknowledgement.
enum Batch {
    Created(WatchBatch),
    Other(WatchBatch),
}

impl WatchStream {
    /// Reads the first message of a watch's `response`, which must be its "created"
    /// acknowledgement; kept for the first `next`.
    pub(super) async fn start(
        endpoint: &str,
        response: reqwest::Response,
        start_revision: i64,
    ) -> Result<WatchStream, Failure> {
        let mut stream = WatchStream {
            endpoint: endpoint.to_string(),
            response,
            lines: LineBuffer::default(),
            start_revision,
            pending: None,
            done: false,
        };
        match stream.read_batch().await {
            Ok(Some(Batch::Created(batch))) => {
                stream.pending = Some(batch);
                Ok(stream)
            }
            Ok(Some(Batch::Other(_))) => Err(Failure::Next(
                "the watch's first message is not its acknowledgement".into(),
            )),
            Ok(None) => Err(Failure::Next("the watch stream ended at once".into())),
            // "no leader" here: another member may have one.
            Err(EtcdError::WatchCancelled(reason)) if reason.contains("no leader") => {
                Err(Failure::Next(reason))
            }
            Err(e) => Err(Failure::Stop(e)),
        }
    }

    /// The next batch: `None` once the stream has ended, `Err` when etcd cancelled it or
    /// the connection broke (after which `next` says `None`). Cancel-safe: a `next`
    /// dropped before it completes (a timeout around it) loses nothing.
    pub async fn next(&mut self) -> Result<Option<WatchBatch>, EtcdError> {
        if let Some(batch) = self.pending.take() {
            return Ok(Some(batch));
        }
        if self.done {
            return Ok(None);
        }
        match self.read_batch().await {
            Ok(Some(Batch::Created(b) | Batch::Other(b))) => Ok(Some(b)),
            other => {
                self.done = true;
                other.map(|_| None)
            }
        }
    }

    async fn read_batch(&mut self) -> Result<Option<Batch>, EtcdError> {
        let Some(line) = self.read_line().await? else {
            return Ok(None);
        };
        parse_watch_line(&line, self.start_revision).map_err(|reason| match reason {
            LineError::Cancelled(reason) => EtcdError::WatchCancelled(reason),
            LineError::Bad(reason) => self.bad(reason),
        })
    }

    /// The next non-empty line. Between reads the only state is in `self.lines`, so a
    /// drop at the `chunk().await` loses nothing.
    async fn read_line(&mut self) -> Result<Option<Vec<u8>>, EtcdError> {
        loop {
            match self.lines.next_line() {
                Ok(Some(line)) => return Ok(Some(line)),
                Ok(None) => {}
                Err(len) => {
                    return Err(self.bad(format!(
                        "watch message over {MAX_WATCH_LINE} bytes ({len} so far)"
                    )));
                }
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.lines.push(&chunk),
                // The last message may come without its newline: etcd ends a stream
                // with `{"error":..}` and no delimiter.
                Ok(None) if self.lines.is_blank() => return Ok(None),
                Ok(None) => return Ok(Some(self.lines.take_rest())),
                Err(e) => {
                    return Err(EtcdError::WatchCancelled(format!(
                        "{}: connection lost: {}",
                        self.endpoint,
                        error_chain(&e)
                    )));
                }
            }
        }
    }

    fn bad(&self, reason: String) -> EtcdError {
        EtcdError::BadResponse {
            endpoint: self.endpoint.clone(),
            reason,
        }
    }
}

/// Bytes received on a stream, split into lines; at most [`MAX_WATCH_LINE`] bytes without a
/// newline.
#[derive(Default)]
struct LineBuffer {
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no newline.
    scanned: usize,
}

impl LineBuffer {
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete non-blank line, without its end; `Err(length)` when an
    /// unfinished line is already too long.
    fn next_line(&mut self) -> Result<Option<Vec<u8>>, usize> {
        loop {
            let Some(pos) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') else {
                self.scanned = self.buf.len();
                if self.buf.len() > MAX_WATCH_LINE {
                    return Err(self.buf.len());
                }
                return Ok(None);
            };
            let end = self.scanned + pos;
            let line: Vec<u8> = self.buf.drain(..=end).take(end).collect();
            self.scanned = 0;
            if line.len() > MAX_WATCH_LINE {
                return Err(line.len());
            }
            if !line.trim_ascii().is_empty() {
                return Ok(Some(line));
            }
        }
    }

    fn is_blank(&self) -> bool {
        self.buf.trim_ascii().is_empty()
    }

    /// What is left after the last newline (at most [`MAX_WATCH_LINE`] bytes).
    fn take_rest(&mut self) -> Vec<u8> {
        self.scanned = 0;
        std::mem::take(&mut self.buf)
    }
}

enum LineError {
    Cancelled(String),
    Bad(String),
}

/// One watch message: the acknowledgement, a batch, or why the watch ended.
fn parse_watch_line(line: &[u8], start_revision: i64) -> Result<Option<Batch>, LineError> {
    let line: StreamLine<WatchResult> =
        serde_json::from_slice(line).map_err(|e| LineError::Bad(format!("watch message: {e}")))?;
    if let Some(e) = line.error {
        return Err(LineError::Cancelled(format!(
            "{} (gRPC code {})",
            e.message, e.grpc_code
        )));
    }
    let Some(r) = line.result else {
        return Err(LineError::Bad("watch message without a result".into()));
    };
    if r.canceled {
        let reason = if r.compact_revision > 0 {
            format!(
                "revision {start_revision} is compacted (the oldest left is {})",
                r.compact_revision
            )
        } else if !r.cancel_reason.is_empty() {
            r.cancel_reason
        } else {
            "cancelled by etcd".to_string()
        };
        return Err(LineError::Cancelled(reason));
    }
    if r.created {
        let revision = if start_revision > 0 {
            start_revision - 1
        } else {
            r.header.revision
        };
        return Ok(Some(Batch::Created(WatchBatch {
            revision,
            events: Vec::new(),
        })));
    }
    let mut revision = 0;
    let mut events = Vec::with_capacity(r.events.len());
    for ev in r.events {
        let key = decode_key(&ev.kv.key).map_err(LineError::Bad)?;
        revision = revision.max(ev.kv.mod_revision);
        events.push(match ev.kind.as_deref() {
            None | Some("PUT") => WatchEvent::Put {
                key,
                value: decode(&ev.kv.value).map_err(LineError::Bad)?,
            },
            Some("DELETE") => WatchEvent::Delete { key },
            Some(other) => return Err(LineError::Bad(format!("event type {other:?}"))),
        });
    }
    if revision == 0 {
        revision = r.header.revision;
    }
    if revision <= 0 {
        return Err(LineError::Bad("watch message without a revision".into()));
    }
    Ok(Some(Batch::Other(WatchBatch { revision, events })))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WatchResult {
    header: Header,
    created: bool,
    canceled: bool,
    cancel_reason: String,
    #[serde(deserialize_with = "super::int64")]
    compact_revision: i64,
    events: Vec<Event>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Event {
    #[serde(rename = "type")]
    kind: Option<String>,
    kv: KeyValue,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_lines() {
        let created = br#"{"result":{"header":{"revision":"7"},"created":true}}"#;
        match parse_watch_line(created, 0) {
            Ok(Some(Batch::Created(b))) => assert_eq!(b.revision, 7),
            _ => panic!("created from now"),
        }
        match parse_watch_line(created, 3) {
            Ok(Some(Batch::Created(b))) => assert_eq!(b.revision, 2),
            _ => panic!("created from 3"),
        }
        let events = br#"{"result":{"header":{"revision":"9"},"events":[
            {"kv":{"key":"L20vYQ==","mod_revision":"4","value":"aGk="}},
            {"type":"DELETE","kv":{"key":"L20vYQ==","mod_revision":"5"}}]}}"#;
        let events: Vec<u8> = events.iter().copied().filter(|&b| b != b'\n').collect();
        match parse_watch_line(&events, 0) {
            Ok(Some(Batch::Other(b))) => assert_eq!(
                b,
                WatchBatch {
                    revision: 5,
                    events: vec![
                        WatchEvent::Put {
                            key: "/m/a".into(),
                            value: b"hi".to_vec()
                        },
                        WatchEvent::Delete { key: "/m/a".into() },
                    ]
                }
            ),
            _ => panic!("events"),
        }
        let progress = br#"{"result":{"header":{"revision":"12"}}}"#;
        match parse_watch_line(progress, 0) {
            Ok(Some(Batch::Other(b))) => assert_eq!((b.revision, b.events.len()), (12, 0)),
            _ => panic!("progress"),
        }
        let no_leader =
            br#"{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader"}}"#;
        assert!(matches!(parse_watch_line(no_leader, 0),
            Err(LineError::Cancelled(r)) if r.contains("no leader")));
        let compacted =
            br#"{"result":{"header":{"revision":"9"},"canceled":true,"compact_revision":"6"}}"#;
        assert!(matches!(parse_watch_line(compacted, 2),
            Err(LineError::Cancelled(r)) if r.contains("compacted")));
        assert!(matches!(
            parse_watch_line(b"<html>", 0),
            Err(LineError::Bad(_))
        ));
    }

    #[test]
    fn line_buffer_splits_and_bounds() {
        let mut lines = LineBuffer::default();
        lines.push(b"{\"a\":1}\n\n{\"b\"");
        assert_eq!(lines.next_line(), Ok(Some(b"{\"a\":1}".to_vec())));
        assert_eq!(lines.next_line(), Ok(None));
        lines.push(b":2}\r\n");
        assert_eq!(lines.next_line(), Ok(Some(b"{\"b\":2}\r".to_vec())));
        assert!(lines.is_blank());
        lines.push(b"{\"error\":{}}");
        assert_eq!(lines.next_line(), Ok(None));
        assert_eq!(lines.take_rest(), b"{\"error\":{}}".to_vec());
        assert!(lines.is_blank());
        let big = vec![b'x'; MAX_WATCH_LINE / 2 + 1];
        lines.push(&big);
        assert_eq!(lines.next_line(), Ok(None));
        lines.push(&big);
        assert_eq!(lines.next_line(), Err(MAX_WATCH_LINE + 2));
    }
}
