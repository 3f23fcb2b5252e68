#!/usr/bin/env python3
"""Regenerates src/api/world.svg, the status page's world map: one <path id="XX"> per country
(XX = ISO 3166-1 alpha-2, upper case) with a <title>, no styles, coloured by the page by id.

Inputs (public-domain Natural Earth 1:110m data, and a code table), fetched with npm:

    cd "$(mktemp -d)"
    npm pack world-atlas@2 i18n-iso-countries
    tar xzf world-atlas-*.tgz && mv package world-atlas
    tar xzf i18n-iso-countries-*.tgz && mv package i18n-iso-countries
    python3 /path/to/meridian/scripts/make-world-map.py \\
        world-atlas/countries-110m.json i18n-iso-countries/codes.json \\
        -o /path/to/meridian/src/api/world.svg

world-atlas (Mike Bostock, ISC) is Natural Earth's 1:110m "Admin 0 - countries" as TopoJSON:
feature ids are ISO 3166-1 numeric codes, properties.name the Natural Earth short name.
i18n-iso-countries' codes.json is a list of [alpha-2, alpha-3, numeric, ...] rows; it is only
read here, at generation time (any JSON list of such rows will do).

Standard library only. The TopoJSON is decoded here (quantized, delta-encoded arcs; a negative
arc index ~i means arc i reversed), projected with the Natural Earth projection (Šavrič et al.
2015, the polynomial form d3-geo's geoNaturalEarth1 uses), scaled to a 1000-unit-wide frame
from 84°N down to 60°S. Antarctica (AQ) is left out. Rings that cross the antimeridian (Fiji,
Chukotka) are cut there into pieces closed along the map's edge, so no line runs across the map.
Of the features without a numeric code, Kosovo becomes XK, and N. Cyprus and Somaliland are
merged into CY and SO (as ISO 3166-1 and GeoIP databases count them; --skip-uncoded leaves
them out, as holes, instead).
"""

import argparse
import json
import math
import sys
from xml.sax.saxutils import escape

# Natural Earth's abbreviated names, spelled out for the <title>s.
NAMES = {
    "Bosnia and Herz.": "Bosnia and Herzegovina",
    "Central African Rep.": "Central African Republic",
    "Dem. Rep. Congo": "Democratic Republic of the Congo",
    "Dominican Rep.": "Dominican Republic",
    "Eq. Guinea": "Equatorial Guinea",
    "eSwatini": "Eswatini",
    "Falkland Is.": "Falkland Islands",
    "Fr. S. Antarctic Lands": "French Southern and Antarctic Lands",
    "Macedonia": "North Macedonia",
    "S. Sudan": "South Sudan",
    "Solomon Is.": "Solomon Islands",
    "W. Sahara": "Western Sahara",
}

# Features that world-atlas leaves without a numeric code but that have an alpha-2 one.
NO_NUMERIC = {"Kosovo": "XK"}

# Features without a code of their own that ISO 3166-1 (and GeoIP databases) count as part of
# a country: merged into it (their shared border dissolved), rather than left as holes.
# --skip-uncoded leaves them out instead.
MERGE_INTO = {"N. Cyprus": "CY", "Somaliland": "SO"}

LEFT_OUT = {"AQ"}


def natural_earth(lon, lat):
    """Natural Earth projection (radians in, unit-sphere plane out, y up)."""
    l, p = math.radians(lon), math.radians(lat)
    p2 = p * p
    p4 = p2 * p2
    x = l * (0.8707 - 0.131979 * p2 + p4 * (-0.013791 + p4 * (0.003971 * p2 - 0.001529 * p4)))
    y = p * (1.007226 + p2 * (0.015085 + p4 * (-0.044475 + 0.028874 * p2 - 0.005916 * p4)))
    return x, y


def decode_arcs(topo):
    tr = topo.get("transform")
    arcs = []
    for arc in topo["arcs"]:
        pts = []
        if tr:
            (sx, sy), (tx, ty) = tr["scale"], tr["translate"]
            x = y = 0
            for dx, dy in arc:
                x += dx
                y += dy
                pts.append((x * sx + tx, y * sy + ty))
        else:
            pts = [tuple(p[:2]) for p in arc]
        arcs.append(pts)
    return arcs


def ring_points(arcs, ring):
    pts = []
    for i in ring:
        arc = arcs[i] if i >= 0 else arcs[~i][::-1]
        pts.extend(arc if not pts else arc[1:])
    if len(pts) > 1 and pts[0] == pts[-1]:
        pts.pop()
    return pts


def dissolve(arcs, rings):
    """The rings (lists of arc indices) of the union of the given rings: an arc used forwards
    by one ring and backwards by another is a shared border and is dropped; the remaining arcs
    are chained end to start into rings again."""
    refs = [i for ring in rings for i in ring]
    present = set(refs)
    kept = [i for i in refs if ~i not in present]

    def ends(i):
        arc = arcs[i] if i >= 0 else arcs[~i][::-1]
        return arc[0], arc[-1]

    by_start = {}
    for i in kept:
        by_start.setdefault(ends(i)[0], []).append(i)
    used = set()
    out = []
    for first in kept:
        if first in used:
            continue
        ring, i = [], first
        while i not in used:
            used.add(i)
            ring.append(i)
            nxt = [j for j in by_start.get(ends(i)[1], []) if j not in used]
            if not nxt:
                break
            i = nxt[0]
        if ends(ring[-1])[1] != ends(ring[0])[0]:
            raise ValueError("rings do not close after dissolving")
        out.append(ring)
    return out


def cut_antimeridian(pts):
    """Splits a ring at every step that wraps from one side of ±180° to the other, adding
    the crossing point on both sides; returns the pieces (each to be closed as a ring)."""
    n = len(pts)
    jumps = [k for k in range(n) if abs(pts[k][0] - pts[(k + 1) % n][0]) > 180]
    if not jumps:
        return [pts]
    if len(jumps) % 2:
        # A ring around a pole (only Antarctica in this data): not handled, it is left out.
        raise ValueError("ring wraps around a pole")
    # Start just after a jump, so that every piece is contiguous.
    start = jumps[0] + 1
    seq = pts[start:] + pts[:start]
    pieces, cur = [], []
    for k in range(n):
        p, q = seq[k], seq[(k + 1) % n]
        cur.append(p)
        if abs(p[0] - q[0]) > 180:
            edge = 180.0 if p[0] > 0 else -180.0
            q_lon = q[0] + (360.0 if edge > 0 else -360.0)
            d = q_lon - p[0]
            t = 0.0 if d == 0 else (edge - p[0]) / d
            lat = p[1] + t * (q[1] - p[1])
            cur.append((edge, lat))
            pieces.append(cur)
            cur = [(-edge, lat)]
    # The last step of seq is a jump, so cur holds only the crossing point: dropped.
    return pieces


def fmt(n, scale):
    """An integer count of 1/scale units as the shortest decimal: 15 -> 1.5, -5 -> -.5."""
    if scale == 1:
        return str(n)
    s = "-" if n < 0 else ""
    whole, frac = divmod(abs(n), scale)
    digits = len(str(scale)) - 1
    if frac == 0:
        return s + str(whole)
    f = str(frac).rjust(digits, "0").rstrip("0")
    return s + (str(whole) if whole else "") + "." + f


def join(nums):
    out = []
    for s in nums:
        if out and not s.startswith("-"):
            out.append(" ")
        out.append(s)
    return "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("topojson", help="world-atlas countries-110m.json")
    ap.add_argument("codes", help="i18n-iso-countries codes.json ([alpha2, alpha3, numeric, ...] rows)")
    ap.add_argument("-o", "--out", help="output SVG (default: stdout)")
    ap.add_argument("--width", type=int, default=1000, help="viewBox width (default 1000)")
    ap.add_argument("--decimals", type=int, default=1, help="coordinate decimals (default 1)")
    ap.add_argument("--north", type=float, default=84.0, help="top latitude of the frame")
    ap.add_argument("--south", type=float, default=-60.0, help="bottom latitude of the frame")
    ap.add_argument("--skip-uncoded", action="store_true",
                    help="leave out N. Cyprus and Somaliland instead of merging them into CY and SO")
    args = ap.parse_args()

    with open(args.topojson, encoding="utf-8") as f:
        topo = json.load(f)
    with open(args.codes, encoding="utf-8") as f:
        numeric_to_alpha2 = {row[2]: row[0].upper() for row in json.load(f)}

    arcs = decode_arcs(topo)
    scale = 10 ** args.decimals
    x_max, _ = natural_earth(180, 0)
    k = args.width / (2 * x_max)  # frame units per unit-sphere
    _, y_top = natural_earth(0, args.north)
    _, y_bottom = natural_earth(0, args.south)
    height = round((y_top - y_bottom) * k)

    def project(lon, lat):
        lat = max(args.south, min(args.north, lat))
        x, y = natural_earth(lon, lat)
        return round((x + x_max) * k * scale), round((y_top - y) * k * scale)

    rings_of = {}  # code -> (name, [ring of arc indices])
    merged = {}  # code -> [ring] of features merged into it
    skipped = []
    for g in topo["objects"]["countries"]["geometries"]:
        name = g.get("properties", {}).get("name", "")
        fid = g.get("id")
        code = numeric_to_alpha2.get(str(fid).zfill(3)) if fid is not None else NO_NUMERIC.get(name)
        if g["type"] == "Polygon":
            rings = list(g["arcs"])
        elif g["type"] == "MultiPolygon":
            rings = [ring for poly in g["arcs"] for ring in poly]
        else:
            rings = []
        if not code and not args.skip_uncoded and name in MERGE_INTO:
            merged.setdefault(MERGE_INTO[name], []).extend(rings)
            skipped.append(f"{name} (merged into {MERGE_INTO[name]})")
            continue
        if not code:
            skipped.append(name or "?")
            continue
        if code in LEFT_OUT:
            continue
        if code in rings_of:
            sys.exit(f"duplicate code {code} ({name})")
        rings_of[code] = (name, rings)
    for code, extra in merged.items():
        if code not in rings_of:
            sys.exit(f"{code}, to merge into, is missing")
        name, rings = rings_of[code]
        rings_of[code] = (name, dissolve(arcs, rings + extra))

    countries = {}
    for code, (name, rings) in rings_of.items():
        subpaths = []
        for ring in rings:
            for piece in cut_antimeridian(ring_points(arcs, ring)):
                pts = []
                for lon, lat in piece:
                    p = project(lon, lat)
                    if not pts or p != pts[-1]:
                        pts.append(p)
                while len(pts) > 1 and pts[-1] == pts[0]:
                    pts.pop()
                if len(pts) >= 3:
                    subpaths.append(pts)
        if not subpaths:
            skipped.append(f"{name} (too small)")
            continue
        # Relative commands; after z the current point is the subpath's start, so the next
        # subpath's m is relative to that.
        d = []
        cur = (0, 0)
        for i, pts in enumerate(subpaths):
            x0, y0 = pts[0]
            cmd = "M" if i == 0 else "m"
            d.append(cmd + join([fmt(x0 - cur[0], scale), fmt(y0 - cur[1], scale)]))
            nums = []
            px, py = x0, y0
            for x, y in pts[1:]:
                nums += [fmt(x - px, scale), fmt(y - py, scale)]
                px, py = x, y
            d.append("l" + join(nums) + "z")
            cur = (x0, y0)
        countries[code] = (NAMES.get(name, name), "".join(d))

    out = [
        "<!-- Source: Natural Earth 1:110m countries (public domain) via the world-atlas package"
        " (TopoJSON, ISC). Natural Earth projection, "
        f"{args.north:g}N to {-args.south:g}S, Antarctica left out; ids are ISO 3166-1 alpha-2."
        " Generated by scripts/make-world-map.py: do not edit by hand. -->",
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {args.width} {height}">',
    ]
    for code in sorted(countries):
        title, d = countries[code]
        out.append(f'<path id="{code}" d="{d}"><title>{escape(title)}</title></path>')
    out.append("</svg>")
    text = "\n".join(out) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    print(f"{len(countries)} countries, {len(text.encode())} bytes; not as such: {', '.join(skipped) or 'none'}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
