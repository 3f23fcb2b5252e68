//! Great-circle distance, for the `nearest` policy (client coordinates to datacenters).

/// Mean Earth radius in kilometres (IUGG), the usual choice for haversine distances.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Great-circle distance in kilometres between two (latitude, longitude) points in degrees,
/// by the haversine formula (numerically stable for short distances, which is where choosing
/// between nearby datacenters matters).
pub fn great_circle_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let dlat = lat2 - lat1;
    let dlon = lon2 - lon1;
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    // Clamp: rounding can push h a hair above 1 for antipodal points.
    2.0 * EARTH_RADIUS_KM * h.clamp(0.0, 1.0).sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_distances() {
        let london = (51.5074, -0.1278);
        let paris = (48.8566, 2.3522);
        let d = great_circle_km(london, paris);
        assert!((d - 343.5).abs() < 2.0, "London-Paris {d}");
        let sydney = (-33.8688, 151.2093);
        let d = great_circle_km(london, sydney);
        assert!((d - 16_990.0).abs() < 30.0, "London-Sydney {d}");
        assert_eq!(great_circle_km(paris, paris), 0.0);
        // Antipodes: half the circumference, no NaN.
        let d = great_circle_km((0.0, 0.0), (0.0, 180.0));
        assert!((d - std::f64::consts::PI * EARTH_RADIUS_KM).abs() < 1e-6);
        // Symmetric.
        assert_eq!(
            great_circle_km(london, sydney),
            great_circle_km(sydney, london)
        );
    }
}
