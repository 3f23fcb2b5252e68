use super::*;

fn enc(code: u16, text: &str) -> Result<Vec<u8>, String> {
    let origin = Name::from_ascii("example.").expect("origin");
    let words: Vec<Word> = text
        .split_whitespace()
        .map(|t| Word {
            text: t,
            quoted: t.starts_with('"'),
        })
        .collect();
    encode(code, &words, &origin)
}

#[test]
fn plain_fields() {
    assert_eq!(enc(1, "192.0.2.1"), Ok(vec![192, 0, 2, 1]));
    assert_eq!(
        enc(15, "10 mx"),
        Ok(b"\x00\x0a\x02mx\x07example\x00".to_vec())
    );
    // Names keep their case, as Knot and NSD transfer them.
    assert_eq!(
        enc(2, "NS1.Example.NET."),
        Ok(b"\x03NS1\x07Example\x03NET\x00".to_vec())
    );
    assert_eq!(
        enc(108, "00-00-5e-00-53-2a"),
        Ok(vec![0, 0, 0x5e, 0, 0x53, 0x2a])
    );
    assert_eq!(
        enc(104, "10 0014:4fff:ff20:ee64"),
        Ok(vec![0, 10, 0, 0x14, 0x4f, 0xff, 0xff, 0x20, 0xee, 0x64])
    );
    assert_eq!(
        enc(257, "0 issue \"ca.example.net\""),
        Ok(b"\x00\x05issueca.example.net".to_vec())
    );
    // SOA timers with units.
    let soa = enc(6, "ns hm 1 1h 15m 1w 1d").expect("soa");
    assert_eq!(
        &soa[soa.len() - 16..],
        &[
            0, 0, 0x0e, 0x10, 0, 0, 3, 0x84, 0, 9, 0x3a, 0x80, 0, 1, 0x51, 0x80
        ]
    );
}

#[test]
fn bitmaps_and_times() {
    // RFC 4034 §4.3's example: A MX RRSIG NSEC TYPE1234.
    let nsec = enc(47, "host.example.com. A MX RRSIG NSEC TYPE1234").expect("nsec");
    let bitmap = &nsec[18..];
    assert_eq!(
        bitmap,
        [
            0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1b, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20
        ]
    );
    let mut out = Vec::new();
    let w = Word {
        text: "20040509183619",
        quoted: false,
    };
    fields::time(&mut out, &w, "t").expect("time");
    assert_eq!(
        u32::from_be_bytes([out[0], out[1], out[2], out[3]]),
        1_084_127_779
    );
}

#[test]
fn special_forms() {
    // APL drops the address's trailing zero octets and carries the negation bit.
    assert_eq!(
        enc(42, "1:192.168.32.0/21 !1:192.168.38.0/28"),
        Ok(vec![
            0, 1, 21, 3, 192, 168, 32, 0, 1, 28, 0x83, 192, 168, 38
        ])
    );
    // LOC: 2^31 ± thousandths of arc seconds; altitude + 100 000 m in cm; default sizes.
    let loc = enc(29, "42 21 54 N 71 6 18 W -24m 30m").expect("loc");
    assert_eq!(loc[..4], [0, 0x33, 0x16, 0x13]);
    let lat = u32::from_be_bytes([loc[4], loc[5], loc[6], loc[7]]);
    assert_eq!(lat, (1 << 31) + (42 * 3600 + 21 * 60 + 54) * 1000);
    let lon = u32::from_be_bytes([loc[8], loc[9], loc[10], loc[11]]);
    assert_eq!(lon, (1 << 31) - (71 * 3600 + 6 * 60 + 18) * 1000);
    assert_eq!(
        u32::from_be_bytes([loc[12], loc[13], loc[14], loc[15]]),
        10_000_000 - 2400
    );
    assert_eq!(enc(45, "10 1 2 192.0.2.38").map(|v| v.len()), Ok(7));
    assert_eq!(enc(260, "10 0 0 ."), Ok(vec![10, 0]));
    assert_eq!(
        enc(260, "10 1 1 192.0.2.1"),
        Ok(vec![10, 0x81, 192, 0, 2, 1])
    );
}

#[test]
fn errors_name_the_type_and_the_field() {
    let err = |code, text| enc(code, text).expect_err(text);
    assert!(err(1, "192.0.2.256").starts_with("invalid A data: invalid IPv4 address"));
    assert!(err(15, "mail mx").contains("invalid preference \"mail\""));
    assert!(err(15, "10").contains("a domain name is missing"));
    assert!(err(1, "192.0.2.1 192.0.2.2").contains("1 fields too many"));
    assert!(err(29, "91 N 0 E 0m").contains("invalid angle"));
    assert!(err(108, "00-00-5e-00-53").contains("EUI48"));
    assert!(err(257, "0 is-sue x").contains("CAA tag"));
    assert!(err(42, "3:1.2.3.4/8").contains("APL"));
    assert!(err(47, "a.example. BOGUS").contains("unknown record type"));
    assert!(err(65280, "abc").contains("write it as \\#"));
}
