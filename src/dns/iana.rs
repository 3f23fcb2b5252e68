//! IANA's DNS codes, in one place (types, classes, rcodes, EDNS options): every other
//! module names a code from here rather than writing its number.

/// Resource record types (RFC 1035 and later, IANA "Resource Record (RR) TYPEs").
pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const HINFO: u16 = 13;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const NAPTR: u16 = 35;
    pub const DNAME: u16 = 39;
    pub const OPT: u16 = 41;
    pub const DS: u16 = 43;
    pub const SSHFP: u16 = 44;
    pub const RRSIG: u16 = 46;
    pub const NSEC: u16 = 47;
    pub const DNSKEY: u16 = 48;
    pub const NSEC3: u16 = 50;
    pub const TLSA: u16 = 52;
    pub const SVCB: u16 = 64;
    pub const HTTPS: u16 = 65;
    pub const TSIG: u16 = 250;
    pub const IXFR: u16 = 251;
    pub const AXFR: u16 = 252;
    pub const ANY: u16 = 255;
    pub const CAA: u16 = 257;

    /// Every type with a mnemonic in IANA's registry that a zone file may name, and its code.
    #[rustfmt::skip]
    pub const MNEMONICS: &[(&str, u16)] = &[
        ("A", 1), ("NS", 2), ("MD", 3), ("MF", 4), ("CNAME", 5), ("SOA", 6), ("MB", 7),
        ("MG", 8), ("MR", 9), ("NULL", 10), ("WKS", 11), ("PTR", 12), ("HINFO", 13),
        ("MINFO", 14), ("MX", 15), ("TXT", 16), ("RP", 17), ("AFSDB", 18), ("X25", 19),
        ("ISDN", 20), ("RT", 21), ("NSAP", 22), ("NSAP-PTR", 23), ("SIG", 24), ("KEY", 25),
        ("PX", 26), ("GPOS", 27), ("AAAA", 28), ("LOC", 29), ("NXT", 30), ("EID", 31),
        ("NIMLOC", 32), ("SRV", 33), ("ATMA", 34), ("NAPTR", 35), ("KX", 36), ("CERT", 37),
        ("A6", 38), ("DNAME", 39), ("SINK", 40), ("OPT", 41), ("APL", 42), ("DS", 43),
        ("SSHFP", 44), ("IPSECKEY", 45), ("RRSIG", 46), ("NSEC", 47), ("DNSKEY", 48),
        ("DHCID", 49), ("NSEC3", 50), ("NSEC3PARAM", 51), ("TLSA", 52), ("SMIMEA", 53),
        ("HIP", 55), ("NINFO", 56), ("RKEY", 57), ("TALINK", 58), ("CDS", 59),
        ("CDNSKEY", 60), ("OPENPGPKEY", 61), ("CSYNC", 62), ("ZONEMD", 63), ("SVCB", 64),
        ("HTTPS", 65), ("DSYNC", 66), ("HHIT", 67), ("BRID", 68), ("SPF", 99), ("UINFO", 100),
        ("UID", 101), ("GID", 102), ("UNSPEC", 103), ("NID", 104), ("L32", 105), ("L64", 106),
        ("LP", 107), ("EUI48", 108), ("EUI64", 109), ("NXNAME", 128), ("TKEY", 249),
        ("TSIG", 250), ("IXFR", 251), ("AXFR", 252), ("MAILB", 253), ("MAILA", 254),
        ("ANY", 255), ("URI", 256), ("CAA", 257), ("AVC", 258), ("DOA", 259),
        ("AMTRELAY", 260), ("RESINFO", 261), ("WALLET", 262), ("CLA", 263), ("IPN", 264),
        ("TA", 32768), ("DLV", 32769),
    ];

    /// The code of a mnemonic (`aaaa`, `NSAP-PTR`) or of RFC 3597's `TYPEnnn`.
    pub fn from_mnemonic(text: &str) -> Option<u16> {
        if let Some(n) = text
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case("TYPE"))
            .and_then(|_| text.get(4..))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        {
            return n.parse().ok();
        }
        MNEMONICS
            .iter()
            .find(|(m, _)| m.eq_ignore_ascii_case(text))
            .map(|(_, c)| *c)
    }

    /// The mnemonic of a code, if it has one.
    pub fn mnemonic(code: u16) -> Option<&'static str> {
        MNEMONICS.iter().find(|(_, c)| *c == code).map(|(m, _)| *m)
    }
}

/// Classes.
pub mod class {
    pub const IN: u16 = 1;
    pub const CH: u16 = 3;
    pub const ANY: u16 = 255;
}

/// Response codes: the header's four bits, and the extended ones carried in OPT or TSIG.
pub mod rcode {
    pub const NOERROR: u8 = 0;
    pub const FORMERR: u8 = 1;
    pub const SERVFAIL: u8 = 2;
    pub const NXDOMAIN: u8 = 3;
    pub const NOTIMP: u8 = 4;
    pub const REFUSED: u8 = 5;
    pub const YXDOMAIN: u8 = 6;
    pub const NOTAUTH: u8 = 9;
    /// Extended (16): carried in the OPT record's upper bits.
    pub const BADVERS: u16 = 16;
    /// TSIG errors (RFC 8945), carried in the TSIG record.
    pub const BADSIG: u16 = 16;
    pub const BADKEY: u16 = 17;
    /// Extended (23): a bad or missing server cookie (RFC 7873 §8).
    pub const BADCOOKIE: u16 = 23;
    pub const BADTIME: u16 = 18;

    /// The mnemonic dig prints for an rcode (`NXDOMAIN`), for the codes that have one in a
    /// header or OPT record (0-10, and 16 as BADVERS).
    pub fn mnemonic(code: u16) -> Option<&'static str> {
        const HEADER: [&str; 11] = [
            "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN",
            "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE",
        ];
        match code {
            BADVERS => Some("BADVERS"),
            c => HEADER.get(usize::from(c)).copied(),
        }
    }
}

/// Opcodes.
pub mod opcode {
    pub const QUERY: u8 = 0;
    pub const NOTIFY: u8 = 4;
}

/// EDNS option codes.
pub mod edns_option {
    /// Name server identifier (RFC 5001).
    pub const NSID: u16 = 3;
    /// Client subnet (RFC 7871).
    pub const ECS: u16 = 8;
    /// DNS Cookies (RFC 7873).
    pub const COOKIE: u16 = 10;
}
