#!/usr/bin/env python3
"""Product catalogues for the up-sell evaluation (issue 6), standard library only.

  cj --transactions T --products P --out FILE
      The Complete Journey (target/cj/*.csv, made by complete_journey.py): one row per product of
      products.csv, columns product_id,department,product_category,product_type,brand,package_size,
      price,name. price = median of sales_value / quantity over the product's rows with quantity > 0
      and sales_value > 0 (empty when none), 4 decimals; name = product_type + package_size
      (product_category, then department, when product_type is empty).

  online-retail --purchases GZ --out FILE
      UCI Online Retail: one row per product StockCode, compared exactly as job.toml does (codes
      without a digit, the codes of datasets/online-retail/not-products.txt and fee lines are left
      out), columns item_id,category,price,name. price = median UnitPrice over rows with
      Quantity > 0, UnitPrice > 0 and a CustomerID (empty when none); name = the most frequent
      description on those rows (else on any row, stock notes such as "damages" last).
      The data set has no categories, so category is a HEURISTIC head noun (see categories()): the
      last word of the description that is not a colour, size, pattern, theme or other modifier
      (STOP), crudely singularised, moved left to a word that is the head of other names
      ("HERB MARKER BASIL" -> MARKER); OTHER when no word is left (empty names, stock notes).
      It prints a summary with random examples to stderr so a reader can judge it.

Example: python3 benches/compare/upsell_catalogs.py cj --transactions target/cj/transactions.csv \
             --products target/cj/products.csv --out target/upsell/cj_catalog.csv
"""

import argparse
import collections
import csv
import gzip
import os
import random
import re
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOT_PRODUCTS = os.path.join(ROOT, "datasets", "online-retail", "not-products.txt")


def fmt_price(values):
    return f"{statistics.median(values):.4f}" if values else ""


def write_csv(path, header, rows):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


# ---------------------------------------------------------------- The Complete Journey


def cj(args):
    prices, lines, unpriced = collections.defaultdict(list), 0, 0
    with open(args.transactions, newline="") as f:
        for r in csv.DictReader(f):
            q, v = float(r["quantity"]), float(r["sales_value"])
            lines += 1
            if q > 0 and v > 0:
                prices[r["product_id"]].append(v / q)
            else:
                unpriced += 1
    rows, priced = [], 0
    with open(args.products, newline="") as f:
        for p in csv.DictReader(f):
            price = fmt_price(prices.get(p["product_id"]))
            priced += bool(price)
            kind = p["product_type"] or p["product_category"] or p["department"]
            name = " ".join(x for x in (kind, p["package_size"]) if x)
            rows.append([p["product_id"], p["department"], p["product_category"], p["product_type"],
                         p["brand"], p["package_size"], price, name])
    write_csv(args.out, ["product_id", "department", "product_category", "product_type", "brand",
                         "package_size", "price", "name"], rows)
    print(f"cj: {lines} transaction rows ({unpriced} with quantity or sales_value <= 0, not priced); "
          f"{len(rows)} products, {priced} with a price ({priced / len(rows):.1%}); "
          f"{len(set(prices) - {r[0] for r in rows})} priced product ids missing from products.csv",
          file=sys.stderr)


# ---------------------------------------------------------------- Online Retail

# Words that never name the product: colours, materials, sizes, shapes, patterns, styles, brands
# and pack words (picked by reading the ~4,000 descriptions, last words first).
STOP = set("""
PINK RED BLUE GREEN WHITE BLACK IVORY CREAM YELLOW ORANGE PURPLE LILAC BROWN GREY GRAY TURQUOISE
AQUA TEAL GOLD SILVER COPPER CLEAR NATURAL PASTEL BRIGHT MULTICOLOUR COLOUR COLOURED COL HOT DARK
LT BLK WHIT PINKS RASPBERRY LIME PEACH CHOC CHOCOLATE MINT FUSCHIA AMBER JADE AMETHYST PERIDOT RUBY
LARGE SMALL MEDIUM MED MINI JUMBO GIANT BIG TINY LONG ROUND SQUARE OVAL RECT RECTANGLE TALL DOUBLE
SIZE TIER RETROSPOT POLKADOT POLKA DOT SPOT SPOTTY STRIPE STRIPED STRIPEY STRIPY GINGHAM PAISLEY
PAISELY FLORAL CHECK TARTAN LACE DESIGN PATTERN STYLE FINISH GLAZE ASSORTED ASSTD ASST ASS MIX
MIXED SET OF PACK PK PCS PC NO NEW SPACEBOY LONDON WOODLAND PANTRY PARADE REGENCY BAROQUE VINTAGE
RETRO ANTIQUE EDWARDIAN VICTORIAN SCANDINAVIAN FRENCH ENGLISH DOLLY GIRL BOY ALPHABET UNION JACK
SWEETHEART CHRISTMAS XMAS EASTER FAIRY ORIGAMI FLOCK GLITTER DIAMANTE BLING CRYSTAL BEADED ACRYLIC
METAL WOOD WOODEN ZINC ENAMEL FELT FELTCRAFT CERAMIC WICKER RUSTIC HANGING DECORATIVE PAINTED
PRINTED SCENTED HAND TRADITIONAL CLASSIC CHARLOTTE TEA TIME GARDEN HOME SWEET KITCHEN PARTY
BIRTHDAY BABY CHILDRENS CHILDREN KIDS SUKI CIRCUS EMPIRE BABUSHKA MONTANA BAKELIKE CAMPAGNE
COTTAGE FONT TUBE IRON MA CRACKLE LAUREL FASHION CHOICE BILL WILLIE WINKIE FOREST REVOLUTIONARY
PARK DINER VILLAGE LINEN MILK FAIR SNOW HOLLY POPPY LOVE HAPPY YOU THANK KEEP CALM MAGIC FUN DAY
JET FILIGREE PIECE EIGHT AND W WITH IN ON FOR THE A TO OR
""".split())
# Motifs that are also objects (a wicker HEART): a head only when they end the name.
MOTIFS = set("""
HEART STAR BIRD BUTTERFLY FLOWER ROSE DAISY LEAF SKULL RABBIT BUNNY OWL DOG CAT CHICK DUCK HEN
APPLE PEAR CHERRY STRAWBERRY LEMON BLOSSOM CAKE SANTA REINDEER ROBIN SNOWMAN SCOTTIE CANDY LOVEBIRD
""".split())
PREPOSITIONS = {"IN", "ON", "WITH", "W"}
# Abbreviations and misspellings, and two-word product names that the last word would split.
ALIAS = {"NECKL": "NECKLACE", "NECKLAC": "NECKLACE", "HLDR": "HOLDER", "HOLD": "HOLDER",
         "BRACLET": "BRACELET", "TEALIGHT": "T-LIGHT", "CANNISTER": "CANISTER", "GARLD": "GARLAND",
         "P'WEIGHT": "PAPERWEIGHT", "DRAWERKNOB": "KNOB", "PHOTOFRAME": "FRAME", "CAKESTAND": "STAND",
         "DEC": "DECORATION"}
COMPOUNDS = {"KEY RING": "KEYRING", "HOT WATER BOTTLE": "HOT-WATER-BOTTLE", "WALL ART": "WALL-ART",
             "CUSHION COVER": "CUSHION-COVER", "PASSPORT COVER": "PASSPORT-COVER",
             "CAKE CASES": "CAKE-CASES", "EGG CUP": "EGG-CUP", "LUNCH BAG": "LUNCH-BAG",
             "JUMBO BAG": "JUMBO-BAG", "ART FLOWER": "ARTIFICIAL-FLOWER",
             "ARTIIFCIAL FLOWER": "ARTIFICIAL-FLOWER"}
# Fee lines under product-like codes (22016 gift voucher, 23444 next day carriage, 23574 packing).
FEE = re.compile(r"^(next day )?carriage$|postage|voucher|^adjust|bank charge|amazon fee|packing charge",
                 re.I)


def is_name(description):
    """Product names are upper case; stock notes ("damages", "thrown away", "?lost") are not."""
    return bool(re.search(r"[A-Z]{3,}", description))


def singular(w):
    if w.endswith("IES") and len(w) > 4:
        return w[:-3] + "Y"
    if re.search(r"(SS|X|CH|SH)ES$", w):
        return w[:-2]
    if w.endswith("S") and not re.search(r"(SS|US|IS)$", w) and len(w) > 3:
        return w[:-1]
    return w


def words(description):
    """Candidate nouns of a description, in order, and how many of them precede IN/ON/WITH/W."""
    text = " ".join(description.upper().split())
    for phrase, word in COMPOUNDS.items():
        text = re.sub(rf"\b{phrase}\b", word, text)
    out, cut = [], None
    for w in re.split(r"[\s,()\"+/.&*:;!]+", text):
        w = w.strip("'-")
        if cut is None and w in PREPOSITIONS and out:
            cut = len(out)
        w = ALIAS.get(w, w)
        if w in STOP or (w := ALIAS.get(singular(w), singular(w))) in STOP:
            continue
        if len(w) >= 2 and not re.search(r"\d", w):
            out.append(w)
    return out, cut or len(out)


def categories(names):
    """Head noun of each name. The crude head is the last candidate word before any IN/ON/WITH
    clause; crude heads of >= 3 names that are not motifs are known heads. A name gets its rightmost
    known head (before the clause, else anywhere), else its crude head, else OTHER."""
    parsed = [words(n) if is_name(n) else ([], 0) for n in names]
    crude = [ws[cut - 1] if ws else "OTHER" for ws, cut in parsed]
    heads = {w for w, n in collections.Counter(crude).items() if n >= 3 and w not in MOTIFS}
    out = []
    for (ws, cut), fallback in zip(parsed, crude):
        known = [w for w in ws[:cut] if w in heads] or [w for w in ws if w in heads]
        out.append(known[-1] if known else fallback)
    return out


def online_retail(args):
    deny = set()
    if os.path.exists(NOT_PRODUCTS):
        deny = {line.strip() for line in open(NOT_PRODUCTS) if line.strip()}
    prices = collections.defaultdict(list)
    bought = collections.defaultdict(collections.Counter)  # descriptions on customer purchases
    seen = collections.defaultdict(collections.Counter)  # descriptions on any row (incl. stock notes)
    with gzip.open(args.purchases, "rt", newline="") as f:
        for r in csv.DictReader(f):
            code, desc = r["StockCode"], " ".join(r["Description"].split())
            if code in deny or code.startswith("gift_") or not re.search(r"\d", code):
                continue
            seen[code][desc] += bool(desc)  # an empty description registers the code only
            if int(r["Quantity"]) > 0 and float(r["UnitPrice"]) > 0 and r["CustomerID"]:
                prices[code].append(float(r["UnitPrice"]))
                if desc:
                    bought[code][desc] += 1
    codes, names, skipped = [], [], []
    for code in sorted(seen):
        # Prefer names on customer purchases; rows without a customer also carry notes ("damages").
        pool = bought.get(code) or collections.Counter(
            {d: n for d, n in seen[code].items() if is_name(d)}) or seen[code]
        name = pool.most_common(1)[0][0]
        if FEE.search(name):
            skipped.append(f"{code} {name}")
        else:
            codes.append(code)
            names.append(name)
    rows = [[c, k, fmt_price(prices.get(c)), n] for c, k, n in zip(codes, categories(names), names)]
    write_csv(args.out, ["item_id", "category", "price", "name"], rows)
    summary(rows, skipped)


def summary(rows, skipped):
    sizes = collections.Counter(r[1] for r in rows)
    big = sum(n for c, n in sizes.items() if n >= 5)
    err = sys.stderr
    print(f"online-retail: {len(rows)} items, {sum(1 for r in rows if r[2])} with a price found, "
          f"{len(sizes)} categories, {big / len(rows):.1%} of items in categories with >= 5 items "
          f"({sum(1 for n in sizes.values() if n >= 5)} such categories), "
          f"{sizes['OTHER']} items in OTHER; fee lines skipped: {skipped}", file=err)
    print("biggest categories: " + ", ".join(f"{c} {n}" for c, n in sizes.most_common(30)), file=err)
    print("examples (seed 6):", file=err)
    for r in random.Random(6).sample(rows, 10):
        print(f"  {r[3]!r} -> {r[1]}", file=err)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("cj", help="The Complete Journey catalogue")
    a.add_argument("--transactions", required=True)
    a.add_argument("--products", required=True)
    a.add_argument("--out", required=True)
    b = sub.add_parser("online-retail", help="UCI Online Retail catalogue (heuristic categories)")
    b.add_argument("--purchases", required=True)
    b.add_argument("--out", required=True)
    args = ap.parse_args()
    cj(args) if args.cmd == "cj" else online_retail(args)


if __name__ == "__main__":
    main()
