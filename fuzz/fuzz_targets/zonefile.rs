//! A master file of arbitrary text loaded as the zone `example.com.`: loading must end in a
//! zone or in diagnostics with a file and a reason, never in a panic.
#![no_main]

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::OnceLock;

use hickory_proto::rr::Name;
use libfuzzer_sys::fuzz_target;
use meridian::config::zonefile;
use meridian::zone::ZoneBuilder;
use meridian::dns::name::wire_lower;

/// A directory of our own holding the zone file and a small file it may `$INCLUDE`.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("meridian-fuzz-zone-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(
            dir.join("inc.zone"),
            "www A 192.0.2.1\n  AAAA 2001:db8::1\n",
        )
        .expect("include file");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // $INCLUDE of a device or a kernel file could read forever or block; those are the
    // operator's choice, not the parser's input.
    if ["/dev", "/proc", "/sys", "/run"]
        .iter()
        .any(|p| text.contains(p))
    {
        return;
    }
    let path = dir().join("fuzz.zone");
    std::fs::write(&path, text).expect("write zone");
    let origin = Name::from_str("example.com.").expect("origin");
    let mut builder = ZoneBuilder::new(wire_lower(&origin));
    let (errors, _warnings) = zonefile::load_zone_file(&path, &origin, &mut builder);
    for e in &errors {
        assert!(!e.message.is_empty(), "diagnostic without a reason: {e:?}");
    }
    if errors.is_empty() {
        // A zone-wide problem (no SOA, no NS...) is a reason too, never a panic.
        if let Err(message) = builder.finish() {
            assert!(!message.to_string().is_empty(), "zone rejected without a reason");
        }
    }
});
