//! The files behind network tables: a geo map's keys, nets and nets file, and a latency
//! CSV, parsed into datacenter orders for `routing::build::TableBuilder`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;

use ipnet::IpNet;

use super::schema::GeoMapConf;
use super::{Problem, RoutingBuilder, line_at};
use crate::routing::build::{GeoKey, Rtt};

impl RoutingBuilder<'_> {
    /// Parses a geo map (keys, nets file, nets) into orders and builds its table.
    pub(super) fn geo_table(
        &mut self,
        map: &GeoMapConf,
        pool: u32,
        base: &Path,
        dc_index: &HashMap<&str, (u32, f64)>,
        text: &str,
    ) -> Result<u32, (usize, String)> {
        let at = |s: std::ops::Range<usize>| line_at(text, s.start);
        let default_names: Vec<&str> = map.default.iter().map(|s| s.get_ref().as_str()).collect();
        let default = if default_names.is_empty() {
            self.tables.pool_order(pool)
        } else {
            self.groups_for(pool, &default_names, dc_index)
                .map_err(|m| {
                    (
                        map.default.first().map(|s| at(s.span())).unwrap_or(0),
                        format!("default: {m}"),
                    )
                })?
        };
        let mut by_key = Vec::new();
        for (key, dcs) in &map.map {
            let k = GeoKey::parse(key)
                .ok_or_else(|| (at(dcs.span()), format!("map key {key:?} is not a location")))?;
            let names: Vec<&str> = dcs.get_ref().iter().map(String::as_str).collect();
            let groups = self
                .groups_for(pool, &names, dc_index)
                .map_err(|m| (at(dcs.span()), format!("map.{key}: {m}")))?;
            by_key.push((k, groups));
        }
        let mut overrides = match &map.nets_file {
            Some(f) => self.nets_file(&base.join(f), pool, dc_index)?,
            None => Vec::new(),
        };
        for (net, dcs) in &map.nets {
            let n = IpNet::from_str(net).map_err(|_| {
                (
                    at(dcs.span()),
                    format!("nets: {net:?} is not a CIDR network"),
                )
            })?;
            let names: Vec<&str> = dcs.get_ref().iter().map(String::as_str).collect();
            let groups = self
                .groups_for(pool, &names, dc_index)
                .map_err(|m| (at(dcs.span()), format!("nets.{net}: {m}")))?;
            overrides.push((n, groups));
        }
        self.tables
            .geo_table(default, by_key, overrides)
            .map_err(|e| (0, e.to_string()))
    }

    /// A nets file: `network datacenter...` per line, `#` comments.
    fn nets_file(
        &self,
        full: &Path,
        pool: u32,
        dc_index: &HashMap<&str, (u32, f64)>,
    ) -> Result<Vec<(IpNet, Vec<u32>)>, Problem> {
        let nets_text = std::fs::read_to_string(full)
            .map_err(|e| (0, format!("nets_file {}: {e}", full.display())))?;
        let mut out = Vec::new();
        for (i, line) in nets_text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut parts = line.split(|c: char| c.is_whitespace() || c == ',');
            let net = parts.next().unwrap_or("");
            let net = IpNet::from_str(net).map_err(|_| {
                (
                    0,
                    format!(
                        "{}:{}: {net:?} is not a CIDR network",
                        full.display(),
                        i + 1
                    ),
                )
            })?;
            let names: Vec<&str> = parts.filter(|p| !p.is_empty()).collect();
            let groups = self
                .groups_for(pool, &names, dc_index)
                .map_err(|m| (0, format!("{}:{}: {m}", full.display(), i + 1)))?;
            out.push((net, groups));
        }
        Ok(out)
    }

    /// Parses a latency table (`client,datacenter,rtt_ms` rows) and builds its table.
    pub(super) fn latency_table(
        &mut self,
        path: &Path,
        pool: u32,
        dc_index: &HashMap<&str, (u32, f64)>,
    ) -> Result<u32, (usize, String)> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| (0, format!("latency_table {}: {e}", path.display())))?;
        let mut rows: BTreeMap<String, Vec<Rtt>> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() || line.starts_with("client,") {
                continue;
            }
            let where_ = || format!("{}:{}", path.display(), i + 1);
            let cols: Vec<&str> = line.split(',').map(str::trim).collect();
            let [client, dc, rtt] = cols[..] else {
                return Err((
                    0,
                    format!("{}: expected client,datacenter,rtt_ms", where_()),
                ));
            };
            let rtt: f64 = rtt
                .parse()
                .map_err(|_| (0, format!("{}: rtt {rtt:?} is not a number", where_())))?;
            let groups = self
                .groups_for(pool, &[dc], dc_index)
                .map_err(|m| (0, format!("{}: {m}", where_())))?;
            if let Some(&g) = groups.first() {
                rows.entry(client.to_string()).or_default().push((g, rtt));
            }
        }
        let mut by_net = Vec::new();
        let mut by_key: HashMap<GeoKey, Vec<Rtt>> = HashMap::new();
        for (client, measured) in rows {
            if let Ok(net) = IpNet::from_str(&client) {
                by_net.push((net, measured));
            } else {
                let key = GeoKey::parse(&client).ok_or_else(|| {
                    (
                        0,
                        format!(
                            "{}: client {client:?} is not a CIDR, ASN or location",
                            path.display()
                        ),
                    )
                })?;
                by_key.insert(key, measured);
            }
        }
        self.tables
            .latency_table(pool, by_net, by_key)
            .map_err(|e| (0, e.to_string()))
    }
}
