"""Generate marginrank's embedded demo world: a SIMULATED home-improvement store.

Every figure written here is simulated (products, brands, prices, costs, judgments, customers,
orders); nothing is real store data. The world is built so that the business trade-off is real
and learnable:

* relevance grades are a deterministic function of a product's type and attributes against the
  query's intent (plus a little rater noise), so a learned ranker can beat BM25;
* unit margin is drawn per product independently of any query, so margin is not relevance;
* buyers of a few "pro" categories repeat more (higher purchase rate, lower drop-out), so those
  products attract high-CLV customers;
* stock, sales velocity and return rates vary enough for inventory and return terms to matter.

The output is byte-for-byte reproducible from the seed: one ``numpy.random.default_rng`` stream
per section, stable iteration orders, fixed float formats, ``\\n`` line endings and a gzip header
without name or time. Standalone on purpose (stdlib, numpy, pandas only) so that it documents the
data without depending on the package it feeds.

Usage::

    python data/demo/generate.py [--out DIR] [--seed 7] [--products 5000] [--queries 300]
                                 [--customers 5000]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

# --------------------------------------------------------------------------------------------
# The store: departments, leaf categories, product types, attributes, brands (all fictional)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attr:
    """One product attribute, its possible values and how titles and descriptions show it."""

    key: str
    values: tuple[str, ...]
    post: str = ""  # title format after the noun ("in {}"); empty: the value precedes the noun
    label: str = ""  # how a description names it ("finish"); empty: the value stands alone
    step: float = 0.0  # price growth per position in ``values``: (1 + step) ** position


@dataclass(frozen=True)
class TypeSpec:
    """A product type: the noun titles use, the synonyms shoppers and copywriters use instead."""

    noun: str
    synonyms: tuple[str, ...]
    subs: tuple[str, ...] = ()  # substitutes: grade 2 when their attributes match
    accessory_of: tuple[str, ...] = ()  # near misses both ways: grade 1
    related: tuple[str, ...] = ()  # other near misses in another leaf: grade 1
    attrs: tuple[Attr, ...] | None = None  # overrides the leaf's attributes
    price: float = 1.0  # price level relative to the leaf's


@dataclass(frozen=True)
class Leaf:
    """A leaf category with its price level, margin, return base and product types."""

    path: str
    price: float  # median shelf price in dollars
    margin: float  # mean unit margin rate, 1 - cost/price
    returns: float  # base return rate
    attrs: tuple[Attr, ...]
    types: tuple[TypeSpec, ...]
    skus: float = 1.0  # relative assortment size
    pro: bool = False  # bought by heavy repeat customers (contractors, trades)
    bulk: bool = False  # sold in larger quantities per order line
    features: tuple[str, ...] = ()  # title modifiers ("Brushless", "Heavy-Duty")

    @property
    def department(self) -> str:
        """First component of the path; brands and description phrases are per department."""
        return self.path.split("/")[0]


def _split(text: str) -> tuple[str, ...]:
    """``"a|b"`` -> ``("a", "b")``: keeps the taxonomy table below compact."""
    return tuple(v for v in text.split("|") if v)


def A(key: str, values: str, post: str = "", label: str | None = None, step: float = 0.0) -> Attr:
    """Compact attribute constructor: values separated by ``|``; label defaults to the key."""
    name = key.replace("_", " ") if label is None else label
    return Attr(key, _split(values), post, name, step)


def T(noun: str, synonyms: str, subs: str = "", acc: str = "", related: str = "",
      attrs: tuple[Attr, ...] | None = None, price: float = 1.0) -> TypeSpec:
    """Compact product-type constructor; lists are ``|``-separated nouns."""
    return TypeSpec(noun, _split(synonyms), _split(subs), _split(acc), _split(related),
                    attrs, price)


def L(path: str, price: float, margin: float, returns: float, attrs: tuple[Attr, ...],
      types: tuple[TypeSpec, ...], features: str = "", skus: float = 1.0, pro: bool = False,
      bulk: bool = False) -> Leaf:
    """Compact leaf constructor."""
    return Leaf(path, price, margin, returns, attrs, types, skus, pro, bulk, _split(features))


FIN_BATH = "Chrome|Brushed Nickel|Matte Black|Stainless Steel|Champagne Bronze|Oil-Rubbed Bronze"
FIN_DOOR = ("Satin Nickel|Matte Black|Oil-Rubbed Bronze|Polished Brass|Venetian Bronze|"
            "Brushed Nickel")
FIN_LIGHT = "Matte Black|Brushed Nickel|Oil-Rubbed Bronze|White|Brushed Gold|Chrome"
ELEC_COLOR = "White|Ivory|Light Almond|Black|Gray"
WOOD_COLOR = "Natural Oak|Gray Oak|Hickory|Walnut|Maple|White Oak"
PACK = A("pack", "1-Pack|10-Pack|25-Pack", post="({})", label="", step=1.2)

LEAVES: tuple[Leaf, ...] = (
    # ---- Tools
    L("Tools/Power Tools/Drills", 129, 0.30, 0.07, skus=1.2,
      features="Brushless|Compact|Cordless|Heavy-Duty",
      attrs=(A("voltage", "12V|18V|20V|40V", step=0.15),
             A("chuck_size", "3/8 in.|1/2 in.", label="chuck", step=0.1),
             A("kit", "Tool Only|Kit|Kit with 2 Batteries", post="({})", label="", step=0.35)),
      types=(T("drill", "drill driver|power drill", subs="hammer drill"),
             T("hammer drill", "rotary hammer drill|masonry drill", subs="drill", price=1.3),
             T("impact driver", "impact drill|impact gun", price=1.1))),
    L("Tools/Power Tools/Saws", 149, 0.30, 0.08, features="Brushless|Compact|Heavy-Duty",
      attrs=(A("power", "Corded|20V|40V", label="power source", step=0.15),
             A("blade_size", "6-1/2 in.|7-1/4 in.|10 in.|12 in.", label="blade", step=0.25),
             A("kit", "Tool Only|Kit", post="({})", label="", step=0.4)),
      types=(T("circular saw", "circ saw|buzz saw"),
             T("miter saw", "chop saw|compound miter saw", price=1.8),
             T("reciprocating saw", "recip saw|demolition saw"))),
    L("Tools/Power Tool Accessories/Drill Bits", 24, 0.50, 0.04, skus=0.8,
      features="Impact Ready|Pro Grade",
      attrs=(A("material", "Titanium|Cobalt|Black Oxide|Carbide"),
             A("pieces", "14-Piece|21-Piece|29-Piece|50-Piece", post="({})", label="", step=0.3)),
      types=(T("drill bit set", "drill bits|bit set|twist drill bits", acc="drill|hammer drill"),
             T("driver bit set", "screwdriver bits|impact bits|driver bits",
               acc="impact driver"))),
    L("Tools/Power Tool Accessories/Saw Blades", 29, 0.48, 0.04, skus=0.8,
      attrs=(A("blade_size", "6-1/2 in.|7-1/4 in.|10 in.|12 in.", label="blade", step=0.2),
             A("teeth", "24-Tooth|40-Tooth|60-Tooth|80-Tooth", label="", step=0.15),
             A("material", "Carbide|Bi-Metal|Steel")),
      types=(T("circular saw blade", "circular blade|framing blade", subs="miter saw blade",
               acc="circular saw"),
             T("miter saw blade", "miter blade|finish blade", subs="circular saw blade",
               acc="miter saw"),
             T("reciprocating saw blade", "recip blade|demolition blade",
               acc="reciprocating saw"))),
    L("Tools/Hand Tools/Hammers", 25, 0.42, 0.03, features="Anti-Vibe|Magnetic|Pro",
      attrs=(A("weight", "16 oz.|20 oz.|22 oz.|28 oz.", label="head", step=0.12),
             A("handle", "Fiberglass|Steel|Wood|Graphite", post="with {} Handle")),
      types=(T("claw hammer", "hammer|nail hammer|framing hammer", subs="mallet"),
             T("mallet", "rubber mallet|dead blow hammer", subs="claw hammer", price=0.8))),
    # ---- Hardware
    L("Hardware/Fasteners/Screws", 11, 0.48, 0.02, skus=1.6, pro=True, bulk=True,
      attrs=(A("size", "#6 x 1 in.|#8 x 1-1/4 in.|#8 x 2 in.|#9 x 2-1/2 in.|#10 x 3 in.",
               label="", step=0.15),
             A("finish", "Zinc Plated|Galvanized|Stainless Steel|Black Phosphate|Coated"),
             A("drive", "Phillips|Star|Square", label="drive"),
             A("pack", "100-Pack|1 lb. Box|5 lb. Box|350-Pack", post="({})", label="",
               step=0.6)),
      types=(T("wood screw", "construction screw|wood screws", subs="deck screw"),
             T("deck screw", "exterior screw|deck screws", subs="wood screw", price=1.2),
             T("drywall screw", "sheetrock screw|drywall screws"))),
    L("Hardware/Fasteners/Anchors", 9, 0.52, 0.03, bulk=True,
      attrs=(A("size", "#6|#8|#10|1/4 in.|3/8 in.", label="", step=0.1),
             A("material", "Plastic|Zinc|Steel|Nylon"),
             A("pack", "10-Pack|25-Pack|50-Pack|100-Pack", post="({})", label="", step=0.5)),
      types=(T("drywall anchor", "wall plug|wall anchor|plastic plug", subs="toggle bolt"),
             T("toggle bolt", "molly bolt|hollow wall anchor|toggle anchor",
               subs="drywall anchor"),
             T("concrete anchor", "masonry anchor|wedge anchor|sleeve anchor", price=1.5))),
    L("Hardware/Fasteners/Nails", 14, 0.45, 0.02, bulk=True,
      attrs=(A("length", "1-1/4 in.|2 in.|2-1/2 in.|3 in.|3-1/2 in.", label="", step=0.1),
             A("finish", "Bright|Galvanized|Hot-Dipped Galvanized|Stainless Steel"),
             A("pack", "1 lb. Box|5 lb. Box|1000-Count", post="({})", label="", step=0.7)),
      types=(T("framing nail", "common nail|stick nail|framing nails"),
             T("finish nail", "brad nail|trim nail|finishing nails"),
             T("roofing nail", "coil roofing nail|roofing nails"))),
    L("Hardware/Door Hardware/Door Locks", 45, 0.38, 0.08, skus=1.1,
      attrs=(A("finish", FIN_DOOR, post="in {}"),
             A("function", "Keyed Entry|Single Cylinder|Double Cylinder", label="")),
      types=(T("deadbolt", "dead bolt|deadbolt lock|door lock", subs="smart lock"),
             T("smart lock", "keyless entry lock|electronic deadbolt|keypad lock",
               subs="deadbolt", price=3.5),
             T("door knob", "doorknob|door handle|entry knob", subs="door lever"),
             T("door lever", "lever handle|door lever handle", subs="door knob"))),
    L("Hardware/Door Hardware/Hinges", 8, 0.50, 0.03,
      attrs=(A("size", "3 in.|3-1/2 in.|4 in.", label="", step=0.15),
             A("finish", FIN_DOOR, post="in {}"),
             A("corner", "Square|1/4 in. Radius|5/8 in. Radius", label="corner"),
             A("pack", "1-Pack|3-Pack|18-Pack", post="({})", label="", step=1.0)),
      types=(T("door hinge", "butt hinge|hinge|mortise hinge", subs="spring hinge"),
             T("spring hinge", "self-closing hinge|spring door hinge", subs="door hinge"),
             T("cabinet hinge", "concealed hinge|euro hinge|cupboard hinge"))),
    L("Hardware/Cabinet Hardware/Cabinet Pulls", 6, 0.55, 0.05,
      attrs=(A("size", "3 in.|3-3/4 in.|5-1/16 in.|6-5/16 in.", label="center to center"),
             A("finish", FIN_DOOR, post="in {}"),
             A("pack", "1-Pack|10-Pack|25-Pack", post="({})", label="", step=1.5)),
      types=(T("cabinet pull", "drawer pull|cabinet handle|bar pull", subs="cabinet knob"),
             T("cabinet knob", "drawer knob|cupboard knob", subs="cabinet pull"))),
    # ---- Plumbing
    L("Plumbing/Faucets/Kitchen Faucets", 189, 0.35, 0.10, skus=1.1,
      attrs=(A("handles", "Single-Handle|Two-Handle|Touchless", label="", step=0.2),
             A("style", "Pull-Down|Pull-Out|Standard|Commercial-Style", label="spout"),
             A("finish", FIN_BATH, post="in {}")),
      types=(T("kitchen faucet", "kitchen tap|kitchen sink faucet|sink faucet",
               subs="bar faucet"),
             T("bar faucet", "prep faucet|bar sink faucet", subs="kitchen faucet", price=0.8))),
    L("Plumbing/Faucets/Bathroom Faucets", 119, 0.37, 0.09,
      attrs=(A("handles", "Single-Handle|Two-Handle", label=""),
             A("spread", "4 in. Centerset|8 in. Widespread|Single Hole", label="", step=0.15),
             A("finish", FIN_BATH, post="in {}")),
      types=(T("bathroom faucet", "bathroom tap|lavatory faucet|bathroom sink faucet",
               subs="vessel faucet"),
             T("vessel faucet", "vessel sink faucet|tall bathroom faucet",
               subs="bathroom faucet"))),
    L("Plumbing/Faucet Parts/Faucet Repair", 16, 0.50, 0.05,
      attrs=(A("material", "Brass|Ceramic Disc|Plastic"),
             A("finish", "Chrome|Brushed Nickel|Matte Black|Stainless Steel", post="in {}")),
      types=(T("faucet cartridge", "valve cartridge|replacement cartridge|cartridge",
               acc="kitchen faucet|bathroom faucet"),
             T("faucet aerator", "aerator|faucet screen|flow restrictor",
               acc="kitchen faucet|bathroom faucet|bar faucet|vessel faucet", price=0.5))),
    L("Plumbing/Pipe & Fittings/Pipe Fittings", 6, 0.45, 0.02, skus=1.5, pro=True, bulk=True,
      attrs=(A("size", "1/2 in.|3/4 in.|1 in.|1-1/2 in.", label="", step=0.35),
             A("material", "Copper|PVC|PEX|Brass|CPVC"),
             A("connection", "Sweat|Push-to-Connect|Slip|Crimp|Threaded", label="connection"),
             PACK),
      types=(T("elbow", "ell|elbow fitting|90 degree elbow|pipe elbow", related="pipe"),
             T("coupling", "coupler|pipe coupling|straight connector", related="pipe"),
             T("tee", "tee fitting|t-fitting|pipe tee", related="pipe"))),
    L("Plumbing/Pipe & Fittings/Pipe", 24, 0.30, 0.03, skus=0.8,
      attrs=(A("size", "1/2 in.|3/4 in.|1 in.", label="", step=0.35),
             A("material", "PEX|PVC|Copper|CPVC"),
             A("length", "10 ft.|20 ft.|100 ft.", post="x {}", label="", step=0.8)),
      types=(T("pipe", "tubing|pipe tube|water line"),)),
    L("Plumbing/Water Heaters/Water Heaters", 749, 0.22, 0.09, skus=0.7,
      attrs=(A("capacity", "30 gal.|40 gal.|50 gal.|75 gal.", label="tank", step=0.2),
             A("fuel", "Natural Gas|Electric|Propane", label=""),
             A("warranty", "6-Year|9-Year|12-Year", post="with {} Warranty", step=0.15)),
      types=(T("water heater", "hot water heater|hot water tank|water tank",
               subs="tankless water heater"),
             T("tankless water heater", "on-demand water heater|tankless heater",
               subs="water heater", price=1.3,
               attrs=(A("flow_rate", "5.5 GPM|7.5 GPM|9.5 GPM|11 GPM", step=0.2),
                      A("fuel", "Natural Gas|Electric|Propane", label=""),
                      A("warranty", "6-Year|9-Year|12-Year", post="with {} Warranty"))))),
    L("Plumbing/Toilets/Toilets", 229, 0.30, 0.08,
      attrs=(A("pieces", "One-Piece|Two-Piece", label="", step=0.4),
             A("bowl", "Round|Elongated", label="bowl", step=0.1),
             A("flush", "1.28 GPF|1.6 GPF|Dual Flush", label=""),
             A("color", "White|Biscuit|Bone", post="in {}")),
      types=(T("toilet", "commode|toilet bowl|water closet"),)),
    L("Plumbing/Toilets/Toilet Parts", 19, 0.48, 0.05,
      attrs=(A("shape", "Round|Elongated", label=""),
             A("material", "Plastic|Wood|Soft Close Plastic"),
             A("color", "White|Biscuit|Black", post="in {}")),
      types=(T("toilet seat", "toilet lid|commode seat", acc="toilet"),
             T("fill valve", "toilet fill valve|ballcock|toilet valve", acc="toilet",
               attrs=(A("size", "2 in.|3 in.", label="flush valve"),
                      A("material", "Plastic|Brass"))),
             T("flapper", "toilet flapper|flush valve seal|tank flapper", acc="toilet",
               price=0.5,
               attrs=(A("size", "2 in.|3 in.", label="flush valve"),
                      A("material", "Rubber|Silicone|Chlorine Resistant Rubber"))))),
    # ---- Electrical
    L("Electrical/Wire/Electrical Wire", 79, 0.25, 0.03, skus=1.3, pro=True,
      attrs=(A("gauge", "14/2|12/2|10/2|14/3|12/3", label="gauge", step=0.25),
             A("length", "25 ft.|50 ft.|100 ft.|250 ft.", label="", step=0.6),
             A("conductor", "Solid|Stranded", label="conductor")),
      types=(T("NM-B wire", "romex|house wire|nonmetallic cable|electrical wire",
               subs="UF-B wire"),
             T("UF-B wire", "underground wire|direct burial cable|underground feeder cable",
               subs="NM-B wire", price=1.3),
             T("THHN wire", "building wire|single conductor wire|stranded wire",
               attrs=(A("gauge", "14 AWG|12 AWG|10 AWG|8 AWG", label="gauge", step=0.3),
                      A("length", "50 ft.|100 ft.|500 ft.", label="", step=0.8),
                      A("color", "Black|White|Red|Green", post="in {}"))))),
    L("Electrical/Wiring Devices/Outlets", 12, 0.45, 0.04, skus=1.1,
      attrs=(A("amperage", "15 Amp|20 Amp", label="", step=0.2),
             A("grade", "Residential|Commercial|Tamper-Resistant", label="grade"),
             A("color", ELEC_COLOR, post="in {}"),
             PACK),
      types=(T("outlet", "receptacle|electrical outlet|wall socket|plug outlet",
               subs="GFCI outlet"),
             T("GFCI outlet", "GFI outlet|GFCI receptacle|ground fault outlet", subs="outlet",
               price=1.8),
             T("USB outlet", "USB receptacle|USB charger outlet|USB wall charger",
               subs="outlet", price=2.0))),
    L("Electrical/Wiring Devices/Light Switches", 14, 0.45, 0.05,
      attrs=(A("switch_type", "Single-Pole|3-Way|4-Way", label="", step=0.2),
             A("style", "Toggle|Rocker|Decorator", label=""),
             A("color", ELEC_COLOR, post="in {}")),
      types=(T("light switch", "wall switch|toggle switch|switch", subs="dimmer switch"),
             T("dimmer switch", "dimmer|light dimmer|slide dimmer", subs="light switch",
               price=1.6),
             T("smart switch", "wifi switch|smart light switch|wi-fi switch",
               subs="light switch", price=2.5))),
    L("Electrical/Wiring Devices/Wall Plates", 5, 0.55, 0.03, skus=0.8,
      attrs=(A("gang", "1-Gang|2-Gang|3-Gang", label="", step=0.4),
             A("style", "Toggle|Decorator|Duplex|Blank", label=""),
             A("color", ELEC_COLOR, post="in {}"),
             A("material", "Plastic|Stainless Steel|Nylon")),
      types=(T("wall plate", "switch plate|outlet cover|cover plate|face plate",
               acc="outlet|GFCI outlet|USB outlet|light switch|dimmer switch|smart switch"),)),
    L("Electrical/Extension Cords/Extension Cords", 29, 0.40, 0.05,
      attrs=(A("length", "6 ft.|25 ft.|50 ft.|100 ft.", label="", step=0.4),
             A("gauge", "16/3|14/3|12/3", label="gauge", step=0.2),
             A("rating", "Indoor|Outdoor|Indoor/Outdoor", label=""),
             A("color", "Orange|Green|Black|Yellow", post="in {}")),
      types=(T("extension cord", "power cord|extension cable|extension lead",
               subs="power strip"),
             T("power strip", "surge protector|outlet strip|power bar", subs="extension cord",
               attrs=(A("outlets", "6-Outlet|8-Outlet|12-Outlet", label="", step=0.3),
                      A("length", "3 ft.|6 ft.|10 ft.", label="cord", step=0.15),
                      A("color", "White|Black|Gray", post="in {}"))))),
    # ---- Lighting
    L("Lighting/Light Bulbs/LED Bulbs", 12, 0.45, 0.05, skus=1.3,
      attrs=(A("wattage", "40-Watt Equivalent|60-Watt Equivalent|75-Watt Equivalent|"
               "100-Watt Equivalent", label="", step=0.15),
             A("base", "A19|A21|BR30|PAR38|E12", label="shape"),
             A("light_color", "Soft White|Bright White|Daylight", label="light"),
             A("pack", "2-Pack|4-Pack|8-Pack|12-Pack", post="({})", label="", step=0.6)),
      types=(T("LED light bulb", "LED bulb|LED lamp|light bulb|lamp",
               subs="LED flood light bulb|smart bulb"),
             T("LED flood light bulb", "LED flood bulb|flood lamp|recessed light bulb",
               subs="LED light bulb"),
             T("smart bulb", "wifi bulb|smart light bulb|color changing bulb",
               subs="LED light bulb", price=2.2))),
    L("Lighting/Ceiling Fans/Ceiling Fans", 179, 0.33, 0.12,
      attrs=(A("size", "42 in.|44 in.|52 in.|60 in.", label="blade span", step=0.15),
             A("location", "Indoor|Outdoor|Indoor/Outdoor", label=""),
             A("light_kit", "with LED Light|without Light", post="{}", label="", step=0.2),
             A("finish", FIN_LIGHT, post="in {}")),
      types=(T("ceiling fan", "overhead fan|fan|ceiling fan with light",
               subs="flush mount ceiling fan"),
             T("flush mount ceiling fan", "hugger fan|low profile fan|flush mount fan",
               subs="ceiling fan"))),
    L("Lighting/Ceiling Fans/Fan Parts", 35, 0.48, 0.08, skus=0.7,
      attrs=(A("finish", FIN_LIGHT, post="in {}"),
             A("fit", "Universal|Select Models", label="fit")),
      types=(T("fan light kit", "ceiling fan light kit|fan light|fan light fixture",
               acc="ceiling fan|flush mount ceiling fan"),
             T("fan remote", "ceiling fan remote|fan remote control|fan controller",
               acc="ceiling fan|flush mount ceiling fan", price=0.9),
             T("downrod", "fan downrod|extension rod|fan pole",
               acc="ceiling fan", price=0.6))),
    L("Lighting/Fixtures/Pendant Lights", 129, 0.40, 0.11,
      attrs=(A("lights", "1-Light|3-Light|5-Light|6-Light", label="", step=0.3),
             A("shade", "Clear Glass|Seeded Glass|Metal|Fabric", post="with {} Shade",
               label="shade"),
             A("finish", FIN_LIGHT, post="in {}")),
      types=(T("pendant light", "hanging light|pendant lamp|pendant", subs="chandelier"),
             T("chandelier", "hanging chandelier|dining room light", subs="pendant light",
               price=1.8),
             T("flush mount light", "ceiling light|flush mount fixture|ceiling fixture",
               price=0.7))),
    L("Lighting/Outdoor Lighting/Outdoor Lights", 59, 0.40, 0.09,
      attrs=(A("lumens", "1000 Lumens|2000 Lumens|3000 Lumens|5000 Lumens", label="",
               step=0.25),
             A("control", "Motion Sensor|Dusk to Dawn|Switch Controlled", label=""),
             A("finish", "Black|Bronze|White|Matte Black", post="in {}")),
      types=(T("flood light", "floodlight|security light|outdoor flood light",
               subs="wall lantern"),
             T("wall lantern", "outdoor wall light|porch light|wall sconce",
               subs="flood light"))),
    # ---- Paint
    L("Paint/Interior Paint/Interior Paint", 42, 0.45, 0.03, skus=1.3, pro=True,
      features="One Coat|Scrubbable|Zero VOC",
      attrs=(A("size", "1 qt.|1 gal.|5 gal.", label="", step=1.5),
             A("color", "Ultra Pure White|Gray|Greige|Beige|Navy|Sage Green", label="color"),
             A("sheen", "Flat|Eggshell|Satin|Semi-Gloss", label="sheen")),
      types=(T("interior paint", "wall paint|paint and primer|latex paint|room paint",
               subs="ceiling paint", related="exterior paint|primer"),
             T("ceiling paint", "ceiling flat paint|ceiling white", subs="interior paint",
               attrs=(A("size", "1 gal.|5 gal.", label="", step=1.5),
                      A("sheen", "Flat|Matte", label="sheen"))))),
    L("Paint/Exterior Paint/Exterior Paint", 52, 0.42, 0.03,
      attrs=(A("size", "1 gal.|5 gal.", label="", step=1.5),
             A("color", "White|Gray|Brown|Cedar|Barn Red|Black", label="color"),
             A("sheen", "Flat|Satin|Semi-Gloss", label="sheen")),
      types=(T("exterior paint", "house paint|outdoor paint|siding paint", related="primer"),
             T("exterior stain", "deck stain|wood stain|fence stain",
               attrs=(A("size", "1 gal.|5 gal.", label="", step=1.5),
                      A("color", "Cedar|Redwood|Gray|Brown|Clear", label="tone"),
                      A("opacity", "Solid Color|Semi-Transparent|Transparent", label=""))))),
    L("Paint/Primer/Primer", 28, 0.40, 0.03, skus=0.7,
      attrs=(A("size", "1 qt.|1 gal.|5 gal.", label="", step=1.5),
             A("base", "Water-Based|Oil-Based|Shellac", label=""),
             A("use", "Interior|Exterior|Interior/Exterior", label="")),
      types=(T("primer", "undercoat|primer sealer|paint primer", subs="stain blocker"),
             T("stain blocker", "stain blocking primer|odor blocker|stain killer",
               subs="primer"))),
    L("Paint/Paint Tools/Paint Brushes", 12, 0.52, 0.02,
      attrs=(A("width", "1 in.|1-1/2 in.|2 in.|2-1/2 in.|3 in.|4 in.", label="", step=0.15),
             A("bristle", "Nylon|Polyester|Nylon/Polyester|Natural Bristle", label="bristle"),
             A("shape", "Angled Sash|Flat|Thin Angle", label="")),
      types=(T("paint brush", "paintbrush|sash brush|trim brush", subs="foam brush",
               acc="interior paint|exterior paint"),
             T("foam brush", "sponge brush|foam applicator", subs="paint brush", price=0.3))),
    L("Paint/Paint Tools/Paint Rollers", 11, 0.52, 0.02,
      attrs=(A("width", "4 in.|9 in.|18 in.", label="", step=0.4),
             A("nap", "1/4 in.|3/8 in.|1/2 in.|3/4 in.", label="nap"),
             A("material", "Microfiber|Woven|Polyester|Lambswool", step=0.0),
             A("pack", "1-Pack|3-Pack|6-Pack", post="({})", label="", step=0.8)),
      types=(T("paint roller", "roller frame|paint roller kit|roller kit",
               acc="interior paint|exterior paint"),
             T("roller cover", "paint roller cover|roller sleeve|roller refill",
               acc="paint roller"),
             T("paint tray", "roller tray|paint pan|tray liner", acc="paint roller",
               attrs=(A("width", "9 in.|14 in.|18 in.", label="", step=0.3),
                      A("material", "Plastic|Metal"))))),
    # ---- Flooring
    L("Flooring/Tile/Floor Tile", 45, 0.42, 0.12, skus=1.2,
      attrs=(A("size", "3 in. x 6 in.|12 in. x 12 in.|12 in. x 24 in.|24 in. x 24 in.",
               label="", step=0.1),
             A("look", "Marble|Wood Look|Stone|Concrete", label="look"),
             A("finish", "Matte|Polished|Glazed", label="finish"),
             A("color", "White|Gray|Beige|Black", label="")),
      types=(T("porcelain tile", "floor tile|porcelain floor tile|porcelain tiles",
               subs="ceramic tile"),
             T("ceramic tile", "ceramic floor tile|wall tile|ceramic tiles",
               subs="porcelain tile", price=0.8),
             T("mosaic tile", "backsplash tile|mosaic|mosaic sheet", price=0.6))),
    L("Flooring/Vinyl Flooring/Vinyl Plank Flooring", 55, 0.38, 0.14,
      attrs=(A("thickness", "4 mm|5 mm|6.5 mm|8 mm", label="thick", step=0.15),
             A("wear_layer", "6 mil|12 mil|20 mil", label="wear layer", step=0.15),
             A("color", WOOD_COLOR, label=""),
             A("install", "Click Lock|Glue Down|Peel and Stick", label="installation")),
      types=(T("vinyl plank flooring", "LVP|luxury vinyl plank|vinyl planks|vinyl flooring",
               subs="laminate flooring|vinyl tile flooring"),
             T("vinyl tile flooring", "LVT|luxury vinyl tile|vinyl floor tile",
               subs="vinyl plank flooring"))),
    L("Flooring/Laminate/Laminate Flooring", 45, 0.36, 0.13,
      attrs=(A("thickness", "7 mm|8 mm|10 mm|12 mm", label="thick", step=0.15),
             A("color", WOOD_COLOR, label=""),
             A("water", "Water-Resistant|Waterproof|Standard", label="")),
      types=(T("laminate flooring", "laminate planks|laminate floor|wood laminate",
               subs="vinyl plank flooring"),)),
    L("Flooring/Flooring Supplies/Installation Supplies", 22, 0.50, 0.06,
      attrs=(A("size", "10 lb.|25 lb.|50 lb.", label="", step=0.6),
             A("color", "Gray|White|Bright White|Charcoal|Sand", label="color")),
      types=(T("underlayment", "floor underlayment|foam underlayment|flooring underlayment",
               acc="laminate flooring|vinyl plank flooring",
               attrs=(A("coverage", "100 sq. ft.|200 sq. ft.|500 sq. ft.", label="",
                        step=0.6),
                      A("material", "Foam|Cork|Rubber"))),
             T("tile grout", "grout|sanded grout|unsanded grout",
               acc="porcelain tile|ceramic tile|mosaic tile"),
             T("thinset mortar", "thinset|tile adhesive|tile mortar",
               acc="porcelain tile|ceramic tile"))),
    # ---- Outdoors
    L("Outdoors/Patio/Patio Umbrellas", 119, 0.45, 0.10,
      attrs=(A("size", "7.5 ft.|9 ft.|10 ft.|11 ft.", label="", step=0.2),
             A("color", "Beige|Navy Blue|Red|Forest Green|Gray|Black", label="canopy"),
             A("lift", "Tilt|Crank Lift|Solar LED", label="")),
      types=(T("patio umbrella", "market umbrella|outdoor umbrella|table umbrella",
               subs="cantilever umbrella"),
             T("cantilever umbrella", "offset umbrella|hanging umbrella|cantilever patio umbrella",
               subs="patio umbrella", price=2.0),
             T("umbrella base", "umbrella stand|umbrella holder|umbrella weight",
               acc="patio umbrella|cantilever umbrella", price=0.5,
               attrs=(A("weight", "30 lb.|50 lb.|80 lb.", label="", step=0.3),
                      A("material", "Resin|Cast Iron|Concrete"),
                      A("color", "Black|Bronze|Gray", post="in {}"))))),
    L("Outdoors/Grills/Grills", 399, 0.28, 0.08, skus=1.1,
      attrs=(A("size", "18 in.|22 in.|26 in.", label="cooking grate", step=0.3),
             A("color", "Black|Red|Stainless Steel", post="in {}")),
      types=(T("gas grill", "propane grill|BBQ grill|barbecue grill",
               subs="charcoal grill|pellet grill",
               attrs=(A("burners", "2-Burner|3-Burner|4-Burner|5-Burner", label="",
                        step=0.3),
                      A("fuel", "Propane|Natural Gas", label=""),
                      A("color", "Black|Stainless Steel|Blue", post="in {}"))),
             T("charcoal grill", "kettle grill|charcoal BBQ|charcoal barbecue",
               subs="gas grill", price=0.4),
             T("pellet grill", "pellet smoker|smoker grill|wood pellet grill",
               subs="gas grill", price=1.4,
               attrs=(A("area", "450 sq. in.|700 sq. in.|1000 sq. in.", label="cooking area",
                        step=0.3),
                      A("color", "Black|Bronze", post="in {}"))))),
    L("Outdoors/Grills/Grill Accessories", 29, 0.55, 0.05,
      attrs=(A("material", "Stainless Steel|Nylon|Brass|Polyester"),
             A("color", "Black|Gray|Red", post="in {}")),
      types=(T("grill cover", "BBQ cover|barbecue cover|grill tarp",
               acc="gas grill|charcoal grill|pellet grill",
               attrs=(A("size", "58 in.|65 in.|72 in.", label="", step=0.2),
                      A("material", "Polyester|Vinyl|Heavy-Duty Canvas"),
                      A("color", "Black|Gray|Khaki", post="in {}"))),
             T("grill brush", "grill cleaning brush|grill scraper|BBQ brush",
               acc="gas grill|charcoal grill|pellet grill"),
             T("grill tool set", "BBQ tool set|grilling utensils|barbecue tools",
               acc="gas grill|charcoal grill|pellet grill", price=1.3))),
    L("Outdoors/Garden/Garden Hoses", 39, 0.45, 0.07,
      attrs=(A("length", "25 ft.|50 ft.|75 ft.|100 ft.", label="", step=0.3),
             A("diameter", "1/2 in.|5/8 in.|3/4 in.", label="diameter", step=0.15),
             A("material", "Rubber|Vinyl|Hybrid Polymer"),
             A("duty", "Light-Duty|Medium-Duty|Heavy-Duty", label="")),
      types=(T("garden hose", "water hose|hose|outdoor hose", subs="expandable hose"),
             T("expandable hose", "expanding hose|flexible hose|stretch hose",
               subs="garden hose"),
             T("hose nozzle", "spray nozzle|hose sprayer|watering nozzle",
               acc="garden hose|expandable hose", price=0.5,
               attrs=(A("patterns", "7-Pattern|8-Pattern|10-Pattern", label="", step=0.15),
                      A("material", "Metal|Plastic|Zinc"))))),
    L("Outdoors/Garden/Mulch", 5, 0.40, 0.01, bulk=True,
      attrs=(A("volume", "1.5 cu. ft.|2 cu. ft.|3 cu. ft.", label="", step=0.4),
             A("color", "Brown|Red|Black|Natural", label=""),
             A("material", "Hardwood|Cedar|Cypress|Pine Bark")),
      types=(T("mulch", "wood mulch|landscape mulch|bark mulch", subs="rubber mulch"),
             T("rubber mulch", "recycled rubber mulch|playground mulch", subs="mulch",
               price=2.5,
               attrs=(A("volume", "0.8 cu. ft.|1.5 cu. ft.", label="", step=0.5),
                      A("color", "Brown|Red|Black", label=""))))),
    L("Outdoors/Outdoor Power Equipment/Lawn Mowers", 349, 0.27, 0.09,
      attrs=(A("deck", "20 in.|21 in.|22 in.", label="cutting deck", step=0.1),
             A("power", "Gas|40V|80V|Electric", label="", step=0.1),
             A("drive", "Push|Self-Propelled", label="", step=0.3)),
      types=(T("lawn mower", "mower|push mower|lawnmower", subs="reel mower"),
             T("reel mower", "manual mower|push reel mower|manual reel mower",
               subs="lawn mower", price=0.4,
               attrs=(A("deck", "14 in.|16 in.|18 in.", label="cutting width", step=0.1),)),
             T("string trimmer", "weed eater|weed trimmer|line trimmer", price=0.5,
               attrs=(A("width", "13 in.|15 in.|17 in.", label="cutting width", step=0.1),
                      A("power", "Gas|20V|40V|Electric", label="", step=0.1))))),
)

BRANDS: dict[str, tuple[str, ...]] = {
    "Tools": ("Torqmax", "Ridgeline", "Ironclad", "Voltedge", "Brackett", "Stanmore",
              "Hartwell", "Norcross"),
    "Hardware": ("Everfast", "Boltline", "Gripwell", "Anchorline", "Halden", "Securo",
                 "Sterling Row", "Fastmark"),
    "Plumbing": ("Aqualine", "Flowcraft", "Brookhaven", "Copperhead", "Pipeworks", "Rivermill",
                 "Clearstream", "Delmar"),
    "Electrical": ("Ampline", "Voltway", "Wirecraft", "Sparkwell", "Gridline", "Halcyon",
                   "Northbay", "Conduro"),
    "Lighting": ("Lumenforge", "Brightwell", "Glowmark", "Aurelia", "Westmont", "Skylark",
                 "Luxbeam", "Cedar Lane"),
    "Paint": ("Colorhaus", "Truecoat", "Brushworks", "Pinnacle", "Everhue", "Sunbeam",
              "Wallmaster", "Finch & Co."),
    "Flooring": ("Floorcraft", "Stonegate", "Oakridge", "Vinylux", "Tilecraft", "Terraform",
                 "Marbella", "Heritage"),
    "Outdoors": ("Greenfield", "Yardmaster", "Sunhaven", "Backyard Pro", "Hearthstone",
                 "Verdant", "Patiohaus", "Flameline"),
}

USES: dict[str, tuple[str, ...]] = {
    "Tools": ("built for demanding job-site work", "made for everyday DIY projects",
              "designed for control and long run time"),
    "Hardware": ("made to hold securely for years", "built for everyday home repairs",
                 "designed for quick installation"),
    "Plumbing": ("built for reliable, leak-free performance", "designed to install without "
                 "special tools", "made for everyday kitchen and bath use"),
    "Electrical": ("rated for residential wiring to code", "designed for safe, secure "
                   "connections", "made to install quickly in standard boxes"),
    "Lighting": ("designed for even, efficient light", "made to update any room",
                 "built for a long service life"),
    "Paint": ("formulated for smooth, even coverage", "made for a durable, washable finish",
              "designed for professional results"),
    "Flooring": ("built for busy households", "designed to install over most subfloors",
                 "made for a realistic look"),
    "Outdoors": ("built to withstand the elements", "made for backyard living",
                 "designed for easy yard care"),
}

# --------------------------------------------------------------------------------------------
# Simulation constants
# --------------------------------------------------------------------------------------------

START = np.datetime64("2024-01-01T00:00:00", "s")
HORIZON_DAYS = 731  # 2024-01-01 .. 2025-12-31 inclusive
FIRST_PURCHASE_DAYS = 547  # a customer's first purchase falls in the first 18 months
OPEN_SECONDS, CLOSE_SECONDS = 6 * 3600, 21 * 3600  # store hours

SHARE_OUT_OF_STOCK = 0.04
SHARE_OVERSTOCKED = 0.10
OVERSTOCK_WEEKS = 26.0
TARGET_WEEKS_OF_COVER = 8.0
LOSS_LEADER_SHARE = 0.01
SHARE_PRO_CUSTOMERS = 0.2
RATER_NOISE = 0.05
STOPWORDS = frozenset("a an and the with of for in ft x to or".split())

CATALOG_COLUMNS = ("product_id", "title", "description", "category", "brand", "attributes",
                   "price", "cost", "return_rate", "stock", "daily_sales", "rating",
                   "review_count")
JUDGMENT_COLUMNS = ("query_id", "query", "product_id", "grade")
TRANSACTION_COLUMNS = ("order_id", "customer_id", "timestamp", "product_id", "quantity",
                       "unit_price")


# --------------------------------------------------------------------------------------------
# Product types and their relations
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductType:
    """A resolved product type: its leaf, attribute schema and grade relations to other types."""

    id: int
    spec: TypeSpec
    leaf: int
    attrs: tuple[Attr, ...]
    subs: frozenset[int]
    related: frozenset[int]


def resolve_types(leaves: Sequence[Leaf]) -> list[ProductType]:
    """Turn noun references into type ids and close the relations under symmetry.

    Substitutes are symmetric; near misses are the other types of the same leaf, accessory
    links in both directions and explicit ``related`` links (also both directions).
    """
    specs = [(li, t) for li, leaf in enumerate(leaves) for t in leaf.types]
    index: dict[str, int] = {}
    for i, (_, spec) in enumerate(specs):
        if spec.noun in index:
            raise ValueError(f"duplicate product type {spec.noun!r}")
        index[spec.noun] = i

    def ids(nouns: Iterable[str]) -> list[int]:
        unknown = [n for n in nouns if n not in index]
        if unknown:
            raise ValueError(f"unknown product type(s) {unknown}")
        return [index[n] for n in nouns]

    subs: list[set[int]] = [set() for _ in specs]
    related: list[set[int]] = [set() for _ in specs]
    for i, (li, spec) in enumerate(specs):
        for j in ids(spec.subs):
            subs[i].add(j)
            subs[j].add(i)
        for j in ids(spec.accessory_of) + ids(spec.related):
            related[i].add(j)
            related[j].add(i)
        related[i].update(j for j, (lj, _) in enumerate(specs) if lj == li and j != i)
    return [
        ProductType(i, spec, li, spec.attrs or leaves[li].attrs,
                    frozenset(subs[i]), frozenset(related[i] - subs[i] - {i}))
        for i, (li, spec) in enumerate(specs)
    ]


def allocate(weights: np.ndarray, total: int, minimum: int) -> np.ndarray:
    """Split ``total`` into integer counts proportional to ``weights`` (largest remainder)."""
    share = weights / weights.sum()
    rest = total - minimum * len(weights)
    exact = share * rest
    counts = np.floor(exact).astype(np.int64)
    extra = np.argsort(-(exact - counts), kind="stable")[: rest - int(counts.sum())]
    counts[extra] += 1
    return counts + minimum


# --------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------


@dataclass
class Product:
    """One generated product; ``attrs`` keeps the attribute order of its type."""

    type_id: int
    leaf: int
    brand: str
    attrs: dict[str, str]
    title: str
    description: str


def display(noun: str) -> str:
    """Title-case a noun without touching acronyms ("LED light bulb" -> "LED Light Bulb")."""
    return " ".join(w if not w.islower() else w[0].upper() + w[1:] for w in noun.split())


def plural(noun: str) -> str:
    """English plural of the last word, good enough for product nouns."""
    if noun.endswith(("s", "x", "sh", "ch")):
        return noun + "es"
    return noun + "s"


def article(text: str) -> str:
    """"a" or "an" as the text is read aloud ("an 8 in.", "a 12-Year", "an Oak")."""
    vowel_sound = text[:1].lower() in "aeiou" or text.startswith(("8", "11 ", "18 "))
    return "an" if vowel_sound else "a"


def choose(rng: np.random.Generator, items: Sequence[str]) -> str:
    """One item, uniformly; a single draw keeps the random stream easy to follow."""
    return items[int(rng.integers(len(items)))]


def make_title(rng: np.random.Generator, brand: str, feature: str, ptype: ProductType,
               attrs: dict[str, str]) -> tuple[str, list[str]]:
    """``{brand} {feature} {pre attrs} {Noun} {post attrs}``; returns the omitted attribute keys.

    Each attribute makes it into the title with probability 0.8, so about half the products
    have a title that leaves out something only the description and attributes field carry.
    """
    pre, post, omitted = [brand] + ([feature] if feature else []), [], []
    for attr in ptype.attrs:
        if rng.random() >= 0.8:
            omitted.append(attr.key)
        elif attr.post:
            post.append(attr.post.format(attrs[attr.key]))
        else:
            pre.append(attrs[attr.key])
    return " ".join(pre + [display(ptype.spec.noun)] + post), omitted


def make_description(rng: np.random.Generator, brand: str, ptype: ProductType, dept: str,
                     attrs: dict[str, str], omitted: list[str]) -> str:
    """One to three sentences that use synonyms and name the attributes the title left out."""
    spec = ptype.spec
    name = choose(rng, spec.synonyms) if rng.random() < 0.7 else spec.noun
    sentences = [f"{name[0].upper()}{name[1:]} from {brand}, {choose(rng, USES[dept])}."]
    keys = list(omitted)
    extra = [a.key for a in ptype.attrs if a.key not in keys]
    if extra and rng.random() < 0.5:
        keys.append(choose(rng, extra))
    if keys:
        labels = {a.key: a.label for a in ptype.attrs}
        keys.sort(key=list(attrs).index)
        parts = [f"{attrs[k]} {labels[k]}".strip() for k in keys]
        if all(labels[k] for k in keys):
            joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
            sentences.append(f"It features {article(parts[0])} {joined}.")
        else:
            sentences.append(f"Specs: {', '.join(parts)}.")
    roll = rng.random()
    if spec.accessory_of and roll < 0.6:
        sentences.append(f"Fits most {plural(choose(rng, spec.accessory_of))}.")
    elif roll < 0.4:
        other = choose(rng, spec.synonyms)
        if other != name:
            sentences.append(f"Also sold as {article(other)} {other}.")
    return " ".join(sentences)


def leaf_brands(rng: np.random.Generator, leaves: Sequence[Leaf]) -> list[list[str]]:
    """Five to eight of the department's brands per leaf, in popularity order."""
    out = []
    for leaf in leaves:
        pool = BRANDS[leaf.department]
        k = int(rng.integers(5, min(8, len(pool)) + 1))
        out.append([pool[i] for i in rng.permutation(len(pool))[:k]])
    return out


def make_products(rng: np.random.Generator, leaves: Sequence[Leaf],
                  types: Sequence[ProductType], n_products: int) -> list[Product]:
    """Draw brand, feature and attributes per product and write its title and description."""
    weights = np.array([leaves[t.leaf].skus / len(leaves[t.leaf].types) for t in types])
    minimum = 2 if n_products >= 4 * len(types) else 1
    if n_products < minimum * len(types):
        raise SystemExit(f"--products must be at least {len(types)} (one per product type)")
    counts = allocate(weights, n_products, minimum)
    brands = leaf_brands(rng, leaves)
    products = []
    for ptype, count in zip(types, counts, strict=True):
        leaf = leaves[ptype.leaf]
        names = brands[ptype.leaf]
        brand_p = 1.0 / np.arange(1, len(names) + 1) ** 0.8
        brand_p /= brand_p.sum()
        value_p = [rng.dirichlet(np.full(len(a.values), 1.5)) for a in ptype.attrs]
        for _ in range(int(count)):
            brand = names[int(rng.choice(len(names), p=brand_p))]
            attrs = {a.key: a.values[int(rng.choice(len(a.values), p=p))]
                     for a, p in zip(ptype.attrs, value_p, strict=True)}
            feature = choose(rng, leaf.features) if leaf.features and rng.random() < 0.35 else ""
            title, omitted = make_title(rng, brand, feature, ptype, attrs)
            description = make_description(rng, brand, ptype, leaf.department, attrs, omitted)
            products.append(Product(ptype.id, ptype.leaf, brand, attrs, title, description))
    order = rng.permutation(len(products))
    return [products[i] for i in order]


def shelf_price(rng: np.random.Generator, raw: np.ndarray) -> np.ndarray:
    """Round raw prices to store-like endings (.97, .98, .99, .49, .47)."""
    cents = np.array([0.97, 0.98, 0.99, 0.49, 0.47])
    ending = cents[rng.integers(len(cents), size=len(raw))]
    return np.round(np.maximum(np.floor(raw - 0.5), 0) + ending, 2)


def price_levels(rng: np.random.Generator, leaves: Sequence[Leaf],
                 types: Sequence[ProductType], products: Sequence[Product]) -> np.ndarray:
    """Lognormal price around the leaf level, scaled by type, brand and attribute size steps.

    The size factor is divided by its median within the leaf so that the leaf's price level
    stays its median shelf price whatever the attribute steps.
    """
    brand_factor: dict[tuple[int, str], float] = {}
    for li, leaf in enumerate(leaves):
        for name in BRANDS[leaf.department]:
            brand_factor[(li, name)] = float(np.exp(rng.normal(0.0, 0.2)))
    size = np.ones(len(products))
    base = np.empty(len(products))
    for i, p in enumerate(products):
        ptype = types[p.type_id]
        for attr in ptype.attrs:
            size[i] *= (1.0 + attr.step) ** attr.values.index(p.attrs[attr.key])
        base[i] = leaves[p.leaf].price * ptype.spec.price * brand_factor[(p.leaf, p.brand)]
    leaf_of = np.array([p.leaf for p in products])
    for li in range(len(leaves)):
        members = leaf_of == li
        size[members] /= np.median(size[members])
    raw = base * size * np.exp(rng.normal(0.0, 0.22, size=len(products)))
    return shelf_price(rng, np.maximum(raw, 1.2))


def stock_levels(rng: np.random.Generator, daily_sales: np.ndarray) -> np.ndarray:
    """Stock as weeks of cover: ~4% out of stock (fast movers more often), ~10% overstocked
    (slow movers more often), the rest lognormal around eight weeks."""
    n = len(daily_sales)
    weeks = np.clip(np.exp(rng.normal(np.log(TARGET_WEEKS_OF_COVER), 0.45, size=n)), 1.0, 24.0)
    n_oos = int(round(SHARE_OUT_OF_STOCK * n))
    p_oos = np.sqrt(daily_sales) / np.sqrt(daily_sales).sum()
    oos = rng.choice(n, size=n_oos, replace=False, p=p_oos)
    rest = np.setdiff1d(np.arange(n), oos)
    p_over = 1.0 / np.sqrt(daily_sales[rest])
    over = rng.choice(rest, size=int(round(SHARE_OVERSTOCKED * n)), replace=False,
                      p=p_over / p_over.sum())
    weeks[over] = rng.uniform(OVERSTOCK_WEEKS + 1.0, 60.0, size=len(over))
    stock = np.maximum(np.round(daily_sales * 7.0 * weeks), 1).astype(np.int64)
    stock[oos] = 0
    return stock


def make_catalog(rng: np.random.Generator, leaves: Sequence[Leaf],
                 types: Sequence[ProductType],
                 n_products: int) -> tuple[list[Product], dict[str, np.ndarray]]:
    """Products plus their numeric columns (price, cost, returns, stock, sales, ratings)."""
    products = make_products(rng, leaves, types, n_products)
    n = len(products)
    leaf_of = np.array([p.leaf for p in products])
    price = price_levels(rng, leaves, types, products)

    mean_margin = np.array([leaf.margin for leaf in leaves])[leaf_of]
    margin = rng.beta(mean_margin * 14.0, (1.0 - mean_margin) * 14.0)
    leaders = rng.random(n) < LOSS_LEADER_SHARE
    margin[leaders] = rng.uniform(-0.15, -0.02, size=int(leaders.sum()))
    cost = np.maximum(np.round(price * (1.0 - margin), 2), 0.01)

    base_returns = np.array([leaf.returns for leaf in leaves])[leaf_of]
    return_rate = np.clip(base_returns * np.exp(rng.normal(0.0, 0.45, size=n)), 0.002, 0.5)
    return_rate = np.round(return_rate, 3)

    names = [BRANDS[leaves[p.leaf].department] for p in products]
    brand_pop = np.array([1.0 / (1 + nm.index(p.brand)) ** 0.5
                          for p, nm in zip(products, names, strict=True)])
    popularity = np.exp(rng.normal(0.0, 1.0, size=n)) * brand_pop
    demand = 3.0 * (np.array([leaf.price for leaf in leaves])[leaf_of] / 20.0) ** -0.5
    daily_sales = np.round(np.maximum(popularity * demand, 0.05), 2)
    stock = stock_levels(rng, daily_sales)

    quality = rng.normal(0.0, 0.35, size=n) - 4.0 * (return_rate - base_returns)
    rating = np.round(np.clip(4.3 + quality, 1.0, 5.0), 1)
    review_count = 1 + rng.poisson(popularity * 25.0 + 2.0)
    columns = {"price": price, "cost": cost, "return_rate": return_rate, "stock": stock,
               "daily_sales": daily_sales, "rating": rating, "review_count": review_count}
    return products, columns


def catalog_rows(products: Sequence[Product], leaves: Sequence[Leaf], ids: Sequence[str],
                 cols: dict[str, np.ndarray]) -> list[tuple[str, ...]]:
    """Catalog rows with fixed float formats (so the bytes depend on the seed only)."""
    rows = []
    for i, p in enumerate(products):
        attributes = ";".join(f"{k}={v}" for k, v in p.attrs.items())
        rows.append((ids[i], p.title, p.description, leaves[p.leaf].path, p.brand, attributes,
                     f"{cols['price'][i]:.2f}", f"{cols['cost'][i]:.2f}",
                     f"{cols['return_rate'][i]:.3f}", str(int(cols['stock'][i])),
                     f"{cols['daily_sales'][i]:.2f}", f"{cols['rating'][i]:.1f}",
                     str(int(cols['review_count'][i]))))
    return rows


# --------------------------------------------------------------------------------------------
# Queries and judgments
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Intent:
    """What a shopper wants: a type, some attribute values and maybe a brand."""

    type_id: int
    attrs: tuple[tuple[str, str], ...]
    brand: str


def tokens(text: str) -> list[str]:
    """Lower-case alphanumeric runs: the crude matching that picks lexical distractors."""
    return re.findall(r"[a-z0-9]+", text.lower())


def grade(intent: Intent, product: Product, types: Sequence[ProductType]) -> int:
    """The rater's rule: 3 exact, 2 one attribute off or a matching substitute, 1 near miss.

    Mismatches count the intent's attributes the product lacks or differs on, and the brand.
    """
    misses = sum(product.attrs.get(k) != v for k, v in intent.attrs)
    misses += bool(intent.brand) and product.brand != intent.brand
    wanted = types[intent.type_id]
    if product.type_id == intent.type_id:
        return 3 if misses == 0 else 2 if misses == 1 else 1
    if product.type_id in wanted.subs:
        return 2 if misses == 0 else 1
    return 1 if product.type_id in wanted.related else 0


def query_value(rng: np.random.Generator, value: str) -> str:
    """How a shopper types an attribute value: lower case, units often abbreviated."""
    text = value.lower()
    variants = ((" in.", (" in.", " in", " inch")), (" ft.", (" ft.", " ft", " foot")),
                (" gal.", (" gal.", " gal", " gallon")), (" lb.", (" lb.", " lb", " lbs")),
                ("-watt equivalent", ("-watt equivalent", " watt", "w")))
    for unit, forms in variants:
        if unit in text:
            text = text.replace(unit, forms[int(rng.choice(3, p=[0.5, 0.3, 0.2]))])
    return text


def typo(rng: np.random.Generator, text: str) -> str:
    """One-character slip (drop, double, swap or replace) in a word of five letters or more."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not candidates:
        return text
    i = candidates[int(rng.integers(len(candidates)))]
    w = words[i]
    j = int(rng.integers(1, len(w) - 1))
    op = int(rng.integers(4))
    if op == 0:
        w = w[:j] + w[j + 1:]
    elif op == 1:
        w = w[:j] + w[j] + w[j:]
    elif op == 2:
        w = w[:j - 1] + w[j] + w[j - 1] + w[j + 1:]
    else:
        w = w[:j] + choose(rng, "etaoinshrdlu".replace(w[j], "")) + w[j + 1:]
    words[i] = w
    return " ".join(words)


def query_text(rng: np.random.Generator, intent: Intent, types: Sequence[ProductType]) -> str:
    """Brand, attribute values (mostly before the noun) and the noun or one of its synonyms."""
    spec = types[intent.type_id].spec
    noun = choose(rng, spec.synonyms) if rng.random() < 0.2 else spec.noun
    before, after = [], []
    for _, value in intent.attrs:
        (before if rng.random() < 0.75 else after).append(query_value(rng, value))
    words = ([intent.brand] if intent.brand else []) + before + [noun] + after
    text = " ".join(words).lower()
    return typo(rng, text) if rng.random() < 0.05 else text


def draw_intent(rng: np.random.Generator, anchor: Product, ptype: ProductType) -> Intent:
    """Zero to two attribute values of an anchor product, and its brand 15% of the time."""
    n_attrs = int(rng.choice(3, p=[0.25, 0.45, 0.30]))
    if not ptype.subs:
        n_attrs = max(n_attrs, 1)  # without substitutes a bare noun has no grade-2 products
    n_attrs = min(n_attrs, len(ptype.attrs))
    keys = sorted(rng.choice(len(ptype.attrs), size=n_attrs, replace=False).tolist())
    attrs = tuple((ptype.attrs[k].key, anchor.attrs[ptype.attrs[k].key]) for k in keys)
    brand = anchor.brand if n_attrs <= 1 and rng.random() < 0.15 else ""
    return Intent(ptype.id, attrs, brand)


def sample(rng: np.random.Generator, items: Sequence[int], k: int,
           weights: np.ndarray | None = None) -> list[int]:
    """``k`` items without replacement (all if fewer), in ``items`` order for stability."""
    if k >= len(items):
        return list(items)
    p = None if weights is None else weights / weights.sum()
    picked = rng.choice(len(items), size=k, replace=False, p=p)
    return [items[i] for i in sorted(picked.tolist())]


class Pooler:
    """Builds judged pools: exact matches, substitutes, near misses and lexical distractors."""

    def __init__(self, products: Sequence[Product], types: Sequence[ProductType],
                 leaves: Sequence[Leaf]) -> None:
        self.products, self.types = products, types
        self.by_type: list[list[int]] = [[] for _ in types]
        self.index: dict[str, list[int]] = {}
        self.dept = [leaves[p.leaf].department for p in products]
        for i, p in enumerate(products):
            self.by_type[p.type_id].append(i)
            for tok in dict.fromkeys(tokens(p.title)):
                self.index.setdefault(tok, []).append(i)

    def graded(self, intent: Intent) -> dict[int, list[int]]:
        """Candidates by true grade among the intent's type, substitutes and near misses."""
        wanted = self.types[intent.type_id]
        out: dict[int, list[int]] = {3: [], 2: [], 1: []}
        for t in sorted({intent.type_id} | wanted.subs | wanted.related):
            for i in self.by_type[t]:
                g = grade(intent, self.products[i], self.types)
                if g:
                    out[g].append(i)
        return out

    def distractors(self, query: str, intent: Intent) -> tuple[list[int], np.ndarray]:
        """Grade-0 products sharing at least one query word, weighted by how many they share."""
        overlap: dict[int, int] = {}
        for tok in dict.fromkeys(tokens(query)):
            if tok in STOPWORDS or (tok.isdigit() and len(tok) == 1):
                continue
            for i in self.index.get(tok, ()):
                overlap[i] = overlap.get(i, 0) + 1
        items = sorted(i for i in overlap
                       if grade(intent, self.products[i], self.types) == 0)
        return items, np.array([overlap[i] ** 2 for i in items], dtype=float)

    def pool(self, rng: np.random.Generator, query: str, intent: Intent,
             relaxed: bool) -> list[tuple[int, int]] | None:
        """15-35 judged products with several per grade, or None if the intent is too thin.

        ``relaxed`` accepts thinner intents (one exact match, two lesser ones), which only tiny
        catalogs need.
        """
        graded = self.graded(intent)
        n3, n2, n1 = len(graded[3]), len(graded[2]), len(graded[1])
        if (n3 < 1 or n2 + n1 < 2) if relaxed else (n3 < 3 or n2 < 2 or n1 < 2):
            return None
        size = int(rng.integers(15, 36))
        chosen: dict[int, int] = {}
        for g in (3, 2, 1):
            for i in sample(rng, graded[g], int(rng.integers(3, 9))):
                chosen[i] = g
        items, weights = self.distractors(query, intent)
        n0 = max(size - len(chosen), 4)
        lexical = sample(rng, items, n0, weights)
        if len(lexical) < n0:  # too few lexical distractors: add products of other departments
            wanted = self.dept[self.by_type[intent.type_id][0]]
            others = [i for i in range(len(self.products))
                      if self.dept[i] != wanted and i not in chosen and i not in lexical]
            lexical += sample(rng, others, n0 - len(lexical))
        chosen.update((i, 0) for i in lexical)
        return sorted(chosen.items())


def rater_noise(rng: np.random.Generator, grades: np.ndarray) -> np.ndarray:
    """Move about 5% of the grades by one step, as human raters disagree."""
    moved = rng.random(len(grades)) < RATER_NOISE
    step = np.where(rng.random(len(grades)) < 0.5, -1, 1)
    return np.clip(grades + moved * step, 0, 3)


def make_judgments(rng: np.random.Generator, products: Sequence[Product],
                   types: Sequence[ProductType], leaves: Sequence[Leaf], ids: Sequence[str],
                   n_queries: int) -> pd.DataFrame:
    """Unique queries over popular types, each with a judged pool of graded products."""
    pooler = Pooler(products, types, leaves)
    eligible = [t for t in types if len(pooler.by_type[t.id]) >= 3]
    if not eligible:
        raise SystemExit("no product type has three products; use more --products")
    weight = np.sqrt([len(pooler.by_type[t.id]) for t in eligible])
    seen: set[str] = set()
    rows: list[tuple[str, str, str, int]] = []
    attempts = 0
    while len(seen) < n_queries:
        attempts += 1
        if attempts > 50 * n_queries:
            raise SystemExit(f"could only build {len(seen)} of {n_queries} queries; "
                             "use more --products")
        ptype = eligible[int(rng.choice(len(eligible), p=weight / weight.sum()))]
        members = pooler.by_type[ptype.id]
        intent = draw_intent(rng, products[members[int(rng.integers(len(members)))]], ptype)
        text = query_text(rng, intent, types)
        relaxed = attempts > 20 * n_queries
        pool = None if text in seen else pooler.pool(rng, text, intent, relaxed)
        if pool is None:
            continue
        seen.add(text)
        qid = f"Q{len(seen):04d}"
        rows.extend((qid, text, ids[i], g) for i, g in pool)
    frame = pd.DataFrame(rows, columns=list(JUDGMENT_COLUMNS))
    frame["grade"] = rater_noise(rng, frame["grade"].to_numpy())
    return frame


# --------------------------------------------------------------------------------------------
# Customers and transactions
# --------------------------------------------------------------------------------------------


@dataclass
class Customers:
    """Latent customer traits: leaf preferences, purchase rate, drop-out probability."""

    leaf_pref: np.ndarray  # (customers, leaves), rows sum to 1
    pro: np.ndarray  # bool: mostly buys pro categories
    rate: np.ndarray  # purchases per day while alive
    dropout: np.ndarray  # probability of dropping out after each purchase


def make_customers(rng: np.random.Generator, leaves: Sequence[Leaf], leaf_sales: np.ndarray,
                   n: int) -> Customers:
    """Department mixes from a Dirichlet; pro customers put most of their weight on pro leaves
    and, the more they do, purchase more often and drop out less (BG/NBD-like traits)."""
    depts = list(dict.fromkeys(leaf.department for leaf in leaves))
    dept_of = np.array([depts.index(leaf.department) for leaf in leaves])
    dept_sales = np.bincount(dept_of, weights=leaf_sales)
    within = leaf_sales / dept_sales[dept_of]
    dept_pref = rng.dirichlet(np.full(len(depts), 0.6), size=n)
    pref = dept_pref[:, dept_of] * within
    pro_leaves = np.array([leaf.pro for leaf in leaves])
    pro = rng.random(n) < SHARE_PRO_CUSTOMERS
    pro_mix = np.zeros((n, len(leaves)))
    pro_mix[:, pro_leaves] = rng.dirichlet(np.ones(int(pro_leaves.sum())), size=n)
    pref = np.where(pro[:, None], 0.3 * pref + 0.7 * pro_mix, pref)
    pref /= pref.sum(axis=1, keepdims=True)
    loyalty = pref[:, pro_leaves].sum(axis=1)
    rate = rng.gamma(2.0, 0.012 * (1.0 + 2.5 * loyalty) / 2.0)
    mean_dropout = 0.32 - 0.24 * loyalty
    dropout = rng.beta(mean_dropout * 6.0, (1.0 - mean_dropout) * 6.0)
    return Customers(pref, pro, rate, dropout)


def purchase_days(rng: np.random.Generator, customers: Customers) -> tuple[np.ndarray, np.ndarray]:
    """BG/NBD process: first purchase uniform over 18 months, exponential gaps, drop-out after
    each purchase; returns (customer index, day as float) per order."""
    who, when = [], []
    first = rng.uniform(0.0, FIRST_PURCHASE_DAYS, size=len(customers.rate))
    for c in range(len(first)):
        t = first[c]
        while t < HORIZON_DAYS:
            who.append(c)
            when.append(t)
            if rng.random() < customers.dropout[c]:
                break
            t += rng.exponential(1.0 / customers.rate[c])
    return np.array(who), np.array(when)


def seconds_of(rng: np.random.Generator, days: np.ndarray) -> np.ndarray:
    """Seconds since START: the day's integer part plus a time within store hours."""
    clock = rng.integers(OPEN_SECONDS, CLOSE_SECONDS, size=len(days))
    return np.floor(days).astype(np.int64) * 86400 + clock


def pick_products(rng: np.random.Generator, leaf_pref: np.ndarray, leaf_of: np.ndarray,
                  daily_sales: np.ndarray) -> np.ndarray:
    """Per line: a leaf by the customer's preference, then a product by popularity."""
    cum = np.cumsum(leaf_pref, axis=1)
    u = rng.random(len(leaf_pref))
    leaf = np.minimum((cum < u[:, None]).sum(axis=1), leaf_pref.shape[1] - 1)
    product = np.empty(len(leaf), dtype=np.int64)
    v = rng.random(len(leaf))
    for li in range(leaf_pref.shape[1]):
        lines = np.flatnonzero(leaf == li)
        members = np.flatnonzero(leaf_of == li)
        cum_sales = np.cumsum(daily_sales[members])
        pos = np.searchsorted(cum_sales, v[lines] * cum_sales[-1], side="right")
        product[lines] = members[np.minimum(pos, len(members) - 1)]
    return product


def make_transactions(rng: np.random.Generator, leaves: Sequence[Leaf], products: Sequence[Product],
                      cols: dict[str, np.ndarray],
                      n_customers: int) -> tuple[pd.DataFrame, Customers]:
    """Orders of 1-4 lines over two years, with discounts and later negative-quantity returns."""
    leaf_of = np.array([p.leaf for p in products])
    sales = cols["daily_sales"]
    leaf_sales = np.bincount(leaf_of, weights=sales, minlength=len(leaves))
    customers = make_customers(rng, leaves, leaf_sales, n_customers)
    who, days = purchase_days(rng, customers)
    secs = seconds_of(rng, days)
    order_rank = np.lexsort((who, secs))  # orders numbered by time, then customer
    who, secs = who[order_rank], secs[order_rank]

    line_p = np.where(customers.pro[who, None], [0.25, 0.3, 0.25, 0.2], [0.5, 0.3, 0.13, 0.07])
    n_lines = 1 + (rng.random(len(who))[:, None] > np.cumsum(line_p, axis=1)).sum(axis=1)
    order = np.repeat(np.arange(len(who)), n_lines)
    product = pick_products(rng, customers.leaf_pref[who[order]], leaf_of, sales)
    keep = ~pd.DataFrame({"o": order, "p": product}).duplicated().to_numpy()
    order, product = order[keep], product[keep]

    bulk = np.array([leaf.bulk or leaf.pro for leaf in leaves])[leaf_of[product]]
    quantity = 1 + rng.binomial(4, np.where(bulk, 0.45, 0.08))
    discount = np.where(rng.random(len(order)) < 0.08, rng.uniform(0.05, 0.20, len(order)), 0.0)
    unit_price = np.round(cols["price"][product] * (1.0 - discount), 2)

    returned = rng.random(len(order)) < cols["return_rate"][product]
    delay = rng.integers(3, 31, size=len(order)) * 86400
    ret_secs = (secs[order] // 86400) * 86400 + delay + rng.integers(
        OPEN_SECONDS, CLOSE_SECONDS, size=len(order))
    partial = (quantity > 1) & (rng.random(len(order)) < 0.3)
    ret_qty = np.where(partial, rng.integers(1, np.maximum(quantity, 2)), quantity)
    returned &= ret_secs < HORIZON_DAYS * 86400

    frame = pd.DataFrame({
        "order": np.concatenate([order, order[returned]]),
        "secs": np.concatenate([secs[order], ret_secs[returned]]),
        "product": np.concatenate([product, product[returned]]),
        "quantity": np.concatenate([quantity, -ret_qty[returned]]),
        "unit_price": np.concatenate([unit_price, unit_price[returned]]),
    })
    frame["customer"] = who[frame["order"].to_numpy()]
    frame = frame.sort_values(["secs", "order", "quantity", "product"], kind="mergesort")
    return frame.reset_index(drop=True), customers


def transaction_rows(frame: pd.DataFrame,
                     product_ids: Sequence[str]) -> Iterable[tuple[str, ...]]:
    """Transactions rows: zero-padded ids, ISO timestamps, prices with two decimals."""
    stamps = np.datetime_as_string(START + frame["secs"].to_numpy().astype("timedelta64[s]"),
                                   unit="s")
    width = max(7, len(str(int(frame["order"].max()) + 1)))
    for o, c, ts, p, q, up in zip(frame["order"].to_numpy(), frame["customer"].to_numpy(),
                                  stamps, frame["product"].to_numpy(),
                                  frame["quantity"].to_numpy(), frame["unit_price"].to_numpy(),
                                  strict=True):
        yield (f"O{o + 1:0{width}d}", f"C{c + 1:05d}", str(ts), product_ids[p], str(int(q)),
               f"{up:.2f}")


# --------------------------------------------------------------------------------------------
# Writing and reporting
# --------------------------------------------------------------------------------------------


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """UTF-8 CSV with "\\n" endings; gzip without file name or time stamp for ``.gz``."""
    with open(path, "wb") as raw:
        binary: io.BufferedIOBase = raw
        if path.suffix == ".gz":
            binary = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
        with io.TextIOWrapper(binary, encoding="utf-8", newline="") as text:  # closes gzip
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties), without scipy."""
    ra = pd.Series(a).rank().to_numpy()
    rb = pd.Series(b).rank().to_numpy()
    return float(np.corrcoef(ra, rb)[0, 1])


def summarize(out: Path, catalog: pd.DataFrame, judgments: pd.DataFrame,
              tx: pd.DataFrame, customers: Customers, seconds: float) -> str:
    """The figures a reviewer checks after a run."""
    pools = judgments.groupby("query_id").size()
    joined = judgments.merge(catalog, on="product_id")
    rate = 1.0 - joined["cost"] / joined["price"]
    unit = joined["price"] - joined["cost"]
    woc = catalog["stock"] / (catalog["daily_sales"] * 7.0)
    orders = tx.groupby("customer")["order"].nunique()
    orders = orders.reindex(range(len(customers.pro)), fill_value=0).to_numpy()
    returns = int((tx["quantity"] < 0).sum())
    grades = judgments["grade"].value_counts().sort_index()
    sizes = {f: (out / f).stat().st_size for f in FILES}
    lines = [
        f"products {len(catalog):,}  queries {judgments['query_id'].nunique():,}  "
        f"judgments {len(judgments):,}  customers {len(customers.pro):,}",
        f"transaction lines {len(tx):,} (returns {returns:,} = {returns / len(tx):.1%}), "
        f"orders {tx['order'].nunique():,}",
        f"out of stock {int((catalog['stock'] == 0).sum()):,}  "
        f"overstocked (>{OVERSTOCK_WEEKS:.0f} weeks) {int((woc > OVERSTOCK_WEEKS).sum()):,}  "
        f"loss leaders {int((catalog['cost'] > catalog['price']).sum()):,}",
        "grades " + "  ".join(f"{g}: {n:,}" for g, n in grades.items()),
        f"pool size min {pools.min()} mean {pools.mean():.1f} max {pools.max()}",
        f"Spearman(grade, margin rate) {spearman(joined['grade'], rate):+.3f}  "
        f"Spearman(grade, unit margin) {spearman(joined['grade'], unit):+.3f}",
        f"orders per customer: pro {orders[customers.pro].mean():.2f} "
        f"({int(customers.pro.sum()):,})  non-pro {orders[~customers.pro].mean():.2f}",
        "files " + "  ".join(f"{f} {s / 1e6:.2f} MB" for f, s in sizes.items())
        + f"  total {sum(sizes.values()) / 1e6:.2f} MB",
        f"generated in {seconds:.1f} s",
    ]
    return "\n".join(lines)


FILES = ("catalog.csv", "judgments.csv", "transactions.csv.gz")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Sizes and seed; the defaults reproduce the committed files."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="output folder (default: this script's folder)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--customers", type=int, default=5000)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Generate the three files; each section has its own random stream so that changing, say,
    the number of queries leaves the catalog and the transactions unchanged."""
    args = parse_args(argv)
    started = time.perf_counter()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    types = resolve_types(LEAVES)

    products, cols = make_catalog(np.random.default_rng([args.seed, 0]), LEAVES, types,
                                  args.products)
    width = max(5, len(str(len(products))))
    ids = [f"P{i + 1:0{width}d}" for i in range(len(products))]
    write_csv(out / "catalog.csv", CATALOG_COLUMNS, catalog_rows(products, LEAVES, ids, cols))

    judgments = make_judgments(np.random.default_rng([args.seed, 1]), products, types, LEAVES,
                               ids, args.queries)
    write_csv(out / "judgments.csv", JUDGMENT_COLUMNS, judgments.itertuples(index=False))

    tx, customers = make_transactions(np.random.default_rng([args.seed, 2]), LEAVES, products,
                                      cols, args.customers)
    write_csv(out / "transactions.csv.gz", TRANSACTION_COLUMNS, transaction_rows(tx, ids))

    catalog = pd.DataFrame({"product_id": ids, **{k: cols[k] for k in ("price", "cost", "stock",
                                                                        "daily_sales")}})
    print(summarize(out, catalog, judgments, tx, customers, time.perf_counter() - started))


if __name__ == "__main__":
    main()
