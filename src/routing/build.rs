//! Building the routing tables while one snapshot is loaded: datacenter orders interned
//! once, check specs interned once, and the per-name network tables — geo maps, nearest
//! datacenter, measured latency — compiled from the GeoIP databases with gdnsd's method
//! (walk each database once, classify, merge neighbours: see `geo::build_table`).
//!
//! The files (geo map keys, nets files, latency CSVs) are read by `config`; what arrives
//! here is already parsed into orders of group indices.

use std::collections::HashMap;

use ipnet::IpNet;

use super::Routing;
use crate::geo::{Fields, GeoError, GeoSources, Location, build_table, great_circle_km};
use crate::health::CheckSpec;

/// The GeoIP databases a load hands the table builder.
pub enum Databases<'g> {
    /// Opened (`None`: none configured).
    Opened(Option<&'g GeoSources>),
    /// The files the serving snapshot was built from, unchanged, left closed: opened only
    /// if a table has to be built after all.
    Unchanged(crate::geo::GeoRecipe),
}

/// Where orders are interned and tables built while one snapshot is built.
pub struct TableBuilder<'g> {
    pub routing: Routing,
    geo: Option<&'g GeoSources>,
    /// The databases' identity (paths, fields, sizes, modification times) for table
    /// recipes; `None` when a file's stamp could not be read (nothing is then reused).
    geo_identity: Option<String>,
    /// The serving snapshot's routing, on a reload: a table whose recipe is unchanged is
    /// taken from it instead of walking the databases again.
    previous: Option<&'g Routing>,
    /// Databases the caller did not open (the previous load's, unchanged): opened here
    /// when a table has to be built after all.
    unopened: Option<crate::geo::GeoRecipe>,
    opened: Option<GeoSources>,
    /// Tables taken from the previous load (the others in `routing.tables` were built).
    pub kept: usize,
    /// Stands in when no database is configured: every client is "unknown".
    no_geo: GeoSources,
    order_ids: HashMap<Vec<u32>, u32>,
    check_ids: HashMap<CheckSpec, u32>,
}

/// A measured RTT: group index, milliseconds.
pub type Rtt = (u32, f64);

impl<'g> TableBuilder<'g> {
    /// `geo_identity` tells the databases apart across loads (see the field); `previous`
    /// is the routing being replaced, if any.
    pub fn new(
        geo: Databases<'g>,
        geo_identity: Option<String>,
        previous: Option<&'g Routing>,
    ) -> Self {
        let (geo, unopened) = match geo {
            Databases::Opened(geo) => (geo, None),
            Databases::Unchanged(recipe) => (None, Some(recipe)),
        };
        Self {
            routing: Routing::default(),
            geo,
            geo_identity,
            previous,
            unopened,
            opened: None,
            kept: 0,
            no_geo: GeoSources::new(Vec::new()),
            order_ids: HashMap::new(),
            check_ids: HashMap::new(),
        }
    }

    fn sources(&self) -> &GeoSources {
        self.geo.or(self.opened.as_ref()).unwrap_or(&self.no_geo)
    }

    /// Opens the databases left closed, before a table is built from them.
    fn open_sources(&mut self) -> Result<(), GeoError> {
        if let Some(recipe) = self.unopened.take() {
            self.opened = Some(recipe.open()?.0);
        }
        Ok(())
    }

    /// The index of `spec` in the routing's checks, added if new.
    pub fn intern_check(&mut self, spec: CheckSpec) -> u32 {
        if let Some(&id) = self.check_ids.get(&spec) {
            return id;
        }
        let id = self.routing.checks.len() as u32;
        self.routing.checks.push(spec.clone());
        self.check_ids.insert(spec, id);
        id
    }

    /// The index of a datacenter order (group indices), added if new.
    pub fn intern(&mut self, order: Vec<u32>) -> u32 {
        if let Some(&id) = self.order_ids.get(&order) {
            return id;
        }
        let id = self.routing.orders.len() as u32;
        self.routing.orders.push(order.clone().into_boxed_slice());
        self.order_ids.insert(order, id);
        id
    }

    /// Interns orders a table build met (see [`PendingOrders`]), keeping their ids.
    fn intern_all(&mut self, orders: Vec<Vec<u32>>) {
        for order in orders {
            let id = self.routing.orders.len() as u32;
            self.order_ids.insert(order.clone(), id);
            self.routing.orders.push(order.into_boxed_slice());
        }
    }

    /// The pool's groups in configuration order.
    pub fn pool_order(&self, pool: u32) -> Vec<u32> {
        self.routing
            .pools
            .get(pool as usize)
            .map(|p| p.groups.clone().collect())
            .unwrap_or_default()
    }

    /// The pool's groups sorted by distance from `coords` (unknown coordinates last).
    pub fn by_distance(&self, pool: u32, coords: (f64, f64)) -> Vec<u32> {
        let mut groups = self.pool_order(pool);
        let dist = |g: &u32| {
            let dc = self.routing.groups[*g as usize].datacenter;
            self.routing.datacenters[dc as usize]
                .coords
                .map_or(f64::INFINITY, |c| great_circle_km(coords, c))
        };
        groups.sort_by(|a, b| dist(a).total_cmp(&dist(b)));
        groups
    }

    fn push_table(
        &mut self,
        table: std::sync::Arc<crate::geo::NetTable<u32>>,
        recipe: Option<String>,
    ) -> u32 {
        let id = self.routing.tables.len() as u32;
        self.routing.tables.push(table);
        self.routing.table_recipes.push(recipe);
        id
    }

    /// A recipe: what a table of `kind` is built from, `inputs` told in a stable order.
    fn recipe(&self, kind: &str, inputs: impl std::fmt::Debug) -> Option<String> {
        let identity = self.geo_identity.as_ref()?;
        Some(format!("{kind} {identity} {inputs:?}"))
    }

    /// Map entries told in a stable order (a `HashMap`'s own order changes from load to load).
    fn sorted<T: std::fmt::Debug>(entries: impl Iterator<Item = T>) -> Vec<String> {
        let mut told: Vec<String> = entries.map(|e| format!("{e:?}")).collect();
        told.sort_unstable();
        told
    }

    /// The previous load's table of the same recipe, its values (order ids there) turned
    /// into this load's order ids: shared as it is when they are the same ids (the usual
    /// case), else copied with the values renumbered.
    fn reuse(&mut self, recipe: &Option<String>) -> Option<u32> {
        let previous = self.previous?;
        let recipe = recipe.as_ref()?;
        let i = previous
            .table_recipes
            .iter()
            .position(|r| r.as_ref() == Some(recipe))?;
        let old = previous.tables.get(i)?;
        // This load's id of each previous order the table holds (u32::MAX: not held).
        let mut ids = vec![u32::MAX; previous.orders.len()];
        for v in old.values() {
            if let Some(slot) = ids.get_mut(*v as usize) {
                *slot = 0;
            }
        }
        let mut same = true;
        for (v, slot) in ids.iter_mut().enumerate() {
            if *slot != u32::MAX {
                let order = previous.orders.get(v).map(|o| o.to_vec());
                *slot = self.intern(order.unwrap_or_default());
                same &= *slot as usize == v;
            }
        }
        let table = if same {
            old.clone()
        } else {
            std::sync::Arc::new(old.map_values(|&v| ids.get(v as usize).copied().unwrap_or(v)))
        };
        self.kept += 1;
        Some(self.push_table(table, Some(recipe.clone())))
    }

    /// The pool's groups with their datacenters' coordinates: what distances depend on.
    fn pool_places(&self, pool: u32) -> Vec<(u32, Option<(f64, f64)>)> {
        self.pool_order(pool)
            .into_iter()
            .map(|g| {
                let dc = self.routing.groups.get(g as usize).map(|g| g.datacenter);
                let coords = dc.and_then(|d| self.routing.datacenters.get(d as usize)?.coords);
                (g, coords)
            })
            .collect()
    }

    /// A geo map's table: each network gets the order of the most specific key that
    /// matches its location, else `default`; `overrides` (CIDR) beat the database.
    pub fn geo_table(
        &mut self,
        default: Vec<u32>,
        by_key: Vec<(GeoKey, Vec<u32>)>,
        overrides: Vec<(IpNet, Vec<u32>)>,
    ) -> Result<u32, GeoError> {
        let recipe = self.recipe("geo", (&default, Self::sorted(by_key.iter()), &overrides));
        if let Some(id) = self.reuse(&recipe) {
            return Ok(id);
        }
        self.open_sources()?;
        let default_id = self.intern(default);
        let by_key: HashMap<GeoKey, u32> = by_key
            .into_iter()
            .map(|(k, order)| (k, self.intern(order)))
            .collect();
        let overrides: Vec<(IpNet, u32)> = overrides
            .into_iter()
            .map(|(net, order)| (net.trunc(), self.intern(order)))
            .collect();
        let fields = key_fields(by_key.keys());
        let table = build_table(self.sources(), &overrides, fields, |loc| {
            best_key(loc, |k| by_key.get(k))
                .copied()
                .unwrap_or(default_id)
        })?;
        Ok(self.push_table(std::sync::Arc::new(table), recipe))
    }

    /// The `limit` nearest datacenters of `pool` for each network, by great-circle
    /// distance from its location.
    pub fn nearest_table(&mut self, pool: u32, limit: usize) -> Result<u32, GeoError> {
        let recipe = self.recipe("nearest", (self.pool_places(pool), limit));
        if let Some(id) = self.reuse(&recipe) {
            return Ok(id);
        }
        self.open_sources()?;
        let default = self.pool_order(pool);
        let default_id = self.intern(default);
        let mut cache: HashMap<(u64, u64), u32> = HashMap::new();
        let mut pending = PendingOrders::new(&self.order_ids, self.routing.orders.len());
        let table = build_table(self.sources(), &[], Fields::COORDS, |loc| {
            let Some(coords) = loc.coords else {
                return default_id;
            };
            let key = (coords.0.to_bits(), coords.1.to_bits());
            if let Some(&id) = cache.get(&key) {
                return id;
            }
            let mut order = self.by_distance(pool, coords);
            order.truncate(limit.max(1));
            let id = pending.id(order);
            cache.insert(key, id);
            id
        })?;
        let new = pending.new;
        self.intern_all(new);
        Ok(self.push_table(std::sync::Arc::new(table), recipe))
    }

    /// Measured RTTs, lowest first; then the datacenters without a measurement, by
    /// distance from `coords` if known, else in pool order.
    fn latency_order(&self, pool: u32, measured: &[Rtt], coords: Option<(f64, f64)>) -> Vec<u32> {
        let mut m = measured.to_vec();
        m.sort_by(|a, b| a.1.total_cmp(&b.1));
        let mut order: Vec<u32> = m.iter().map(|x| x.0).collect();
        let rest = match coords {
            Some(c) => self.by_distance(pool, c),
            None => self.pool_order(pool),
        };
        for g in rest {
            if !order.contains(&g) {
                order.push(g);
            }
        }
        order
    }

    /// A latency table's table: measurements by client network (CIDR) and by location key.
    pub fn latency_table(
        &mut self,
        pool: u32,
        by_net: Vec<(IpNet, Vec<Rtt>)>,
        by_key: HashMap<GeoKey, Vec<Rtt>>,
    ) -> Result<u32, GeoError> {
        let keys = Self::sorted(by_key.iter());
        let recipe = self.recipe("latency", (self.pool_places(pool), &by_net, keys));
        if let Some(id) = self.reuse(&recipe) {
            return Ok(id);
        }
        self.open_sources()?;
        let mut overrides = Vec::new();
        for (net, measured) in &by_net {
            let order = self.latency_order(pool, measured, None);
            overrides.push((net.trunc(), self.intern(order)));
        }
        let default_id = {
            let order = self.pool_order(pool);
            self.intern(order)
        };
        let mut pending = PendingOrders::new(&self.order_ids, self.routing.orders.len());
        let fields = key_fields(by_key.keys()) | Fields::COORDS;
        let table = build_table(self.sources(), &overrides, fields, |loc| {
            let measured = best_key(loc, |k| by_key.get(k))
                .map(|v| &v[..])
                .unwrap_or(&[]);
            if measured.is_empty() && loc.coords.is_none() {
                return default_id;
            }
            pending.id(self.latency_order(pool, measured, loc.coords))
        })?;
        let new = pending.new;
        self.intern_all(new);
        Ok(self.push_table(std::sync::Arc::new(table), recipe))
    }
}

/// Orders met while a table is built: the classifier borrows the builder, so new orders get
/// ids past the existing ones here and are interned afterwards by `intern_all`.
struct PendingOrders<'k> {
    known: &'k HashMap<Vec<u32>, u32>,
    base: u32,
    new: Vec<Vec<u32>>,
}

impl<'k> PendingOrders<'k> {
    fn new(known: &'k HashMap<Vec<u32>, u32>, base: usize) -> Self {
        Self {
            known,
            base: base as u32,
            new: Vec::new(),
        }
    }

    fn id(&mut self, order: Vec<u32>) -> u32 {
        if let Some(&id) = self.known.get(&order) {
            return id;
        }
        match self.new.iter().position(|o| *o == order) {
            Some(i) => self.base + i as u32,
            None => {
                self.new.push(order);
                self.base + self.new.len() as u32 - 1
            }
        }
    }
}

/// A location key of a geo map or latency table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GeoKey {
    Asn(u32),
    /// continent[/country[/subdivision[/city]]], lowercase.
    Path(String),
}

impl GeoKey {
    pub fn parse(key: &str) -> Option<Self> {
        let k = key.trim();
        if let Some(n) = k.strip_prefix("AS").or_else(|| k.strip_prefix("as"))
            && let Ok(asn) = n.parse()
        {
            return Some(GeoKey::Asn(asn));
        }
        let parts: Vec<&str> = k.split('/').map(str::trim).collect();
        if parts.is_empty() || parts.len() > 4 || parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        let mut norm: Vec<String> = parts.iter().map(|p| p.to_lowercase()).collect();
        // "NA/US/US-CA" and "NA/US/CA" mean the same subdivision.
        if norm.len() >= 3 {
            let prefix = format!("{}-", norm[1]);
            if let Some(s) = norm[2].strip_prefix(&prefix) {
                norm[2] = s.to_string();
            }
        }
        Some(GeoKey::Path(norm.join("/")))
    }
}

/// The location fields that keys like these are matched on (see [`best_key`]).
fn key_fields<'k>(keys: impl Iterator<Item = &'k GeoKey>) -> Fields {
    let mut fields = Fields::CONTINENT | Fields::COUNTRY | Fields::SUBDIVISION;
    for key in keys {
        match key {
            GeoKey::Asn(_) => fields = fields | Fields::ASN,
            GeoKey::Path(p) if p.split('/').count() > 3 => fields = fields | Fields::CITY,
            GeoKey::Path(_) => {}
        }
    }
    fields
}

/// The most specific key present: ASN first, then city, subdivision, country, continent.
fn best_key<'m, T>(loc: &Location, get: impl Fn(&GeoKey) -> Option<&'m T>) -> Option<&'m T> {
    if let Some(asn) = loc.asn
        && let Some(v) = get(&GeoKey::Asn(asn))
    {
        return Some(v);
    }
    let continent = loc.continent.map(|c| c.as_str().to_lowercase())?;
    let mut path = vec![continent];
    if let Some(c) = loc.country {
        path.push(c.as_str().to_lowercase());
        if let Some(s) = loc.subdivision {
            path.push(s.as_str().to_lowercase());
            if let Some(city) = &loc.city {
                path.push(city.to_lowercase());
            }
        }
    }
    while !path.is_empty() {
        if let Some(v) = get(&GeoKey::Path(path.join("/"))) {
            return Some(v);
        }
        path.pop();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geo_keys_normalize() {
        assert_eq!(GeoKey::parse("AS15169"), Some(GeoKey::Asn(15169)));
        assert_eq!(
            GeoKey::parse(" NA/US/US-CA "),
            Some(GeoKey::Path("na/us/ca".into()))
        );
        assert_eq!(GeoKey::parse("EU//x"), None);
        assert_eq!(GeoKey::parse("a/b/c/d/e"), None);
    }

    #[test]
    fn orders_are_interned_once() {
        let mut b = TableBuilder::new(Databases::Opened(None), None, None);
        let a = b.intern(vec![2, 0, 1]);
        assert_eq!(b.intern(vec![2, 0, 1]), a);
        assert_ne!(b.intern(vec![0, 1, 2]), a);
        assert_eq!(b.routing.orders.len(), 2);
    }

    #[test]
    fn without_a_database_every_client_gets_the_default_or_its_network() {
        let mut b = TableBuilder::new(Databases::Opened(None), None, None);
        let net: IpNet = "192.0.2.0/24".parse().expect("net");
        let t = b
            .geo_table(vec![1, 0], vec![], vec![(net, vec![0, 1])])
            .expect("table");
        let table = &b.routing.tables[t as usize];
        let inside = table.lookup("192.0.2.77".parse().expect("addr"));
        let outside = table.lookup("198.51.100.1".parse().expect("addr"));
        let order = |id: u32| b.routing.orders[id as usize].to_vec();
        assert_eq!(order(*inside.0), [0, 1]);
        assert_eq!(inside.1, 24, "the override's prefix is the scope");
        assert_eq!(order(*outside.0), [1, 0]);
    }
}
