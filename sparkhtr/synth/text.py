"""Seeded generators of English and French lines in the register of the real data.

The real lines are 19th–20th-century letters, wills and notes: salutations and
closings, dates (``12 March 1868``, ``le 3 août 1916``), sums (``£3 10s``,
``1 500 francs``), addresses, names and initials, abbreviations (``Mr.``, ``M^r``,
``Mme``, ``&c.``), and lines that are fragments of sentences cut at the writer's right
margin. This module builds such text from an embedded vocabulary with small
grammars (agreement and French elision handled well enough to look right), then
cuts a continuous stream of words into lines. Everything stays within
:data:`sparkhtr.core.alphabet.DEFAULT_CHARACTERS`.

>>> import random
>>> rng = random.Random(3)
>>> line = random_line(rng, "fr")
>>> 15 <= len(line) <= 70
True
>>> [len(x) >= 15 for x in random_paragraph(rng, 3, "en")]
[True, True, True]
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator

import numpy as np

LANGUAGES: tuple[str, ...] = ("en", "fr")

# An unbreakable space inside a token (e.g. "juge ;" or "« Vive"): lines are only cut
# at ordinary spaces, so a line never starts with a lone punctuation mark.
_NB = "\u00a0"
# "S.W." + "." at a sentence end; a real ellipsis has three dots and is kept
_DOUBLE_STOP = re.compile(r"(?<!\.)\.\.(?!\.)")


def as_random(rng: random.Random | np.random.Generator | int | None) -> random.Random:
    """A :class:`random.Random` from a ``Random``, a numpy ``Generator``, a seed or ``None``.

    >>> as_random(7).random() == random.Random(7).random()
    True
    """
    if isinstance(rng, random.Random):
        return rng
    if isinstance(rng, np.random.Generator):
        return random.Random(int(rng.integers(0, 2**63 - 1)))
    return random.Random(rng)


# ---------------------------------------------------------------------------
# shared pieces: names, places, dates, money
# ---------------------------------------------------------------------------

EN_FIRST = ("John", "William", "Thomas", "George", "James", "Charles", "Henry", "Joseph", "Edward", "Robert",
            "Richard", "Frederick", "Arthur", "Walter", "Francis", "Samuel", "Daniel", "Alfred", "Mary",
            "Elizabeth", "Anne", "Sarah", "Emily", "Frances", "Harriet", "Charlotte", "Jane", "Margaret",
            "Ellen", "Lucy", "Agnes", "Grace")
EN_LAST = ("Hooker", "Darwin", "Gray", "Bentham", "Lyell", "Huxley", "Smith", "Brown", "Wilson", "Taylor",
           "Thomson", "Oliver", "Henslow", "Berkeley", "Baker", "Hemsley", "Balfour", "Wallich", "Thwaites",
           "Harvey", "Clarke", "Mueller", "Hance", "King", "Watson", "Jackson", "Lindley", "Babington",
           "Hodgson", "Campbell", "Murray", "Fitch", "Ward", "Turner", "Palmer", "O'Brien")
EN_TITLES = ("Mr.", "Mrs.", "Miss", "Dr.", "Prof.", "Sir", "Lady", "Captain", "Rev.", "Col.", "Mr", "Dr")
EN_CITIES = ("London", "Kew", "Edinburgh", "Glasgow", "Dublin", "Calcutta", "Bombay", "Madras", "Boston",
             "Cambridge", "Oxford", "Manchester", "Bristol", "Sydney", "Melbourne", "Cape Town", "Torquay",
             "Darjeeling", "Ceylon", "Natal", "Liverpool", "Leeds", "York", "Bath", "Hong Kong", "Ottawa")
EN_STREETS = ("Baker Street", "Oxford Street", "Regent Street", "Queen's Gate", "Harley Street",
              "Gower Street", "Portland Place", "Kew Green", "Piccadilly", "Park Lane", "Gloucester Road",
              "Church Street", "High Street", "King's Road", "Bedford Square", "Cadogan Place", "Mill Lane")
EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
             "October", "November", "December")
EN_MONTHS_SHORT = ("Jan.", "Feb.", "Mar.", "Apr.", "May", "June", "July", "Aug.", "Sept.", "Oct.", "Nov.",
                   "Dec.")
EN_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

FR_FIRST_M = ("Jean", "Louis", "Pierre", "Henri", "Paul", "Jules", "Joseph", "Marcel", "Émile", "Eugène",
              "André", "Lucien", "Georges", "René", "Albert", "Gaston", "Raymond", "Victor", "Léon",
              "François", "Édouard", "Auguste", "Camille", "Étienne")
FR_FIRST_F = ("Marie", "Jeanne", "Louise", "Marguerite", "Berthe", "Germaine", "Yvonne", "Léontine",
              "Hélène", "Suzanne", "Élise", "Cécile", "Madeleine", "Juliette", "Lucie", "Thérèse", "Noëlle",
              "Joséphine", "Éléonore", "Zoé")
FR_LAST = ("Martin", "Bernard", "Dubois", "Durand", "Lefèvre", "Moreau", "Laurent", "Simon", "Michel",
           "Leroy", "Roux", "Fournier", "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau",
           "Vincent", "Mercier", "Blanc", "Guérin", "Boyer", "Chevalier", "Lebeau", "Vicq", "Perraud",
           "Gauthier", "Péraire", "Lemaître", "Bouchard", "Thiébaut", "Château", "Daguerre", "Lévêque")
FR_TOWNS = ("Paris", "Lyon", "Marseille", "Bordeaux", "Lille", "Nantes", "Rouen", "Reims", "Verdun", "Amiens",
            "Versailles", "Toulouse", "Dijon", "Tours", "Orléans", "Nancy", "Saint-Étienne", "Grenoble",
            "Limoges", "Brest", "Chartres", "Soissons", "Arras", "Épinal", "Besançon", "Nîmes", "Angoulême",
            "Compiègne", "Pontoise", "Évreux", "Béziers", "Montluçon")
FR_STREETS = ("Rue de Rivoli", "rue du Chevaleret", "boulevard Saint-Michel", "place de la République",
              "avenue des Champs-Élysées", "rue Nicolet", "rue de la Paix", "quai Voltaire",
              "rue des Écoles", "boulevard Haussmann", "rue Saint-Honoré", "impasse des Lilas",
              "rue de l'Église", "place du Marché", "avenue de la Gare", "rue Lafayette", "chemin des Prés")
FR_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
             "novembre", "décembre")
FR_MONTHS_SHORT = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.",
                   "déc.")
FR_DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


def _pick(rng: random.Random, *options: Callable[[], str] | str, weights: list[float] | None = None) -> str:
    choice = rng.choices(options, weights=weights)[0]
    return choice() if callable(choice) else choice


def random_name(rng: random.Random, language: str) -> str:
    """A person's name as letters and wills write them (titles, initials, ``née``).

    >>> random_name(random.Random(1), "en")[0].isupper()
    True
    """
    r = rng
    if language == "en":
        first, last = r.choice(EN_FIRST), r.choice(EN_LAST)
        return _pick(r, f"{first} {last}", f"{r.choice(EN_TITLES)} {last}", f"{first[0]}. {last}",
                     f"{first[0]}. {r.choice(EN_FIRST)[0]}. {last}", f"{r.choice(EN_TITLES)} {first[0]}. {last}",
                     f"Sir {first} {last}", last, weights=[3, 4, 2, 1, 2, 0.5, 2])
    first = r.choice(FR_FIRST_M + FR_FIRST_F)
    last = r.choice(FR_LAST)
    return _pick(r, f"{first} {last}", f"M. {last}", f"Mme {last}", f"Mlle {first}", f"{first[0]}. {last}",
                 f"M^r {last}", f"Madame veuve {last}", f"{last} née {r.choice(FR_LAST)}",
                 f"{last.upper()} {first}", f"Me {last}", f"Monsieur {first} {last}",
                 weights=[4, 3, 2, 1, 1, 0.5, 0.5, 0.7, 0.5, 0.5, 1])


def random_date(rng: random.Random, language: str) -> str:
    """A date as written in 19th/20th-century letters.

    >>> any(m in random_date(random.Random(0), "fr") for m in (*FR_MONTHS, "/", "-"))
    True
    """
    r = rng
    day, month, year = r.randint(1, 28), r.randrange(12), r.randint(1840, 1975)
    if language == "en":
        suffix = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd"}.get(day, "th")
        m = EN_MONTHS[month]
        return _pick(r, f"{day} {m} {year}", f"{m} {day}{suffix}, {year}", f"{day}{suffix} {m} {year}",
                     f"{EN_MONTHS_SHORT[month]} {day}, {year}", f"{day}/{month + 1}/{year % 100:02d}",
                     f"{r.choice(EN_DAYS)}, {day} {m}", f"the {day}{suffix} inst.", f"{m} {day}th",
                     f"{day}.{month + 1}.{year % 100:02d}", weights=[4, 3, 2, 1, 1, 1, 0.5, 0.3, 0.5])
    m = FR_MONTHS[month]
    d = "1er" if day == 1 else str(day)
    return _pick(r, f"le {d} {m} {year}", f"{d} {m} {year}", f"le {d} {m}", f"{r.choice(FR_DAYS)} {d} {m} {year}",
                 f"{day}/{month + 1}/{year % 100:02d}", f"{day}-{month + 1}-{year}",
                 f"{d} {FR_MONTHS_SHORT[month]} {year}",
                 f"en {m} {year}", weights=[4, 2, 1, 1, 1, 1, 0.5, 1])


def random_money(rng: random.Random, language: str) -> str:
    """A sum of money: pounds/shillings/pence or francs (rarely dollars and euros).

    >>> random_money(random.Random(2), "en")[0] in "£$0123456789"
    True
    """
    r = rng
    if language == "en":
        pounds = r.choice((1, 2, 3, 5, 10, 12, 20, 25, 50, 100, 250))
        shillings, pence = r.randint(1, 19), r.randint(1, 11)
        return _pick(r, f"£{pounds} {shillings}s", f"£{pounds} {shillings}s {pence}d", f"£{pounds}",
                     f"{shillings}s {pence}d", f"{shillings}s.", f"£{r.randint(1, 9)},{r.randint(0, 999):03d}",
                     f"${r.choice((5, 10, 40, 100, 250))}", f"{r.randint(2, 9)} guineas",
                     f"£{pounds}.{shillings}.{pence}",
                     weights=[3, 2, 3, 1, 1, 0.5, 0.5, 0.5, 1])
    francs = r.choice((5, 10, 20, 25, 50, 100, 200, 300, 500, 1000, 1500, 2000, 5000, 10000, 20000))
    grouped = f"{francs:,}".replace(",", " ")
    return _pick(r, f"{grouped} francs", f"{grouped} fr.", f"{r.randint(1, 99)} fr. {r.randint(5, 95)}",
                 f"{grouped} F", f"{r.choice((10, 25, 50))} centimes", f"{r.randint(2, 900)} €",
                 f"{grouped} frs", weights=[4, 2, 1, 1, 1, 0.3, 1])


def random_address(rng: random.Random, language: str) -> str:
    """A postal address fragment (number, street, town).

    >>> any(ch.isdigit() for ch in random_address(random.Random(0), "fr"))
    True
    """
    r = rng
    n = r.randint(1, 120)
    if language == "en":
        return _pick(r, f"{n} {r.choice(EN_STREETS)}, {r.choice(EN_CITIES)}", f"{n} {r.choice(EN_STREETS)}, W.",
                     f"Royal Gardens, {r.choice(('Kew', 'Calcutta', 'Peradeniya'))}",
                     f"{n}, {r.choice(EN_STREETS)}, S.W.", weights=[4, 1, 1, 1])
    return _pick(r, f"{n} {r.choice(FR_STREETS)}, {r.choice(FR_TOWNS)}", f"{n}, {r.choice(FR_STREETS)}",
                 f"{n} bis, {r.choice(FR_STREETS)}, {r.choice(FR_TOWNS)}", f"{r.choice(FR_STREETS)} n° {n}",
                 weights=[4, 2, 1, 1])


def _number(rng: random.Random, language: str) -> str:
    r = rng
    n = r.randint(2, 60)
    if language == "en":
        return _pick(r, str(n), f"No. {n}", f"{n} lbs", f"{n} ft. {r.randint(1, 11)} in.", f"{n}°",
                     f"{n} 1/2", f"{n}%", f"p. {r.randint(3, 400)}", f"{n} miles", f"#{n}")
    return _pick(r, str(n), f"n° {n}", f"{n} kilos", f"{n} kil.", f"{n} %", f"{n}°", f"{n}e", f"{n}ème",
                 f"{n} mètres", f"§ {n}", f"{n} 1/2", f"{n}h{r.choice(('00', '15', '30', '45'))}")


# ---------------------------------------------------------------------------
# English
# ---------------------------------------------------------------------------

EN_NOUNS = (
    "letter", "book", "plant", "seed", "specimen", "garden", "house", "friend", "brother", "sister", "father",
    "mother", "wife", "son", "daughter", "family", "paper", "parcel", "box", "collection", "journey", "voyage",
    "ship", "steamer", "island", "coast", "river", "mountain", "valley", "forest", "flower", "leaf", "tree",
    "root", "fern", "moss", "species", "genus", "note", "account", "estate", "property", "sum", "bank", "bill",
    "cheque", "office", "society", "meeting", "council", "museum", "herbarium", "library", "volume", "chapter",
    "page", "drawing", "plate", "map", "morning", "evening", "week", "month", "year", "winter", "summer",
    "spring", "autumn", "weather", "health", "cold", "fever", "doctor", "church", "school", "college", "town",
    "village", "city", "country", "road", "station", "train", "post", "answer", "question", "matter",
    "subject", "opinion", "review", "work", "day", "night", "hour", "reason", "hope", "pleasure", "kindness",
    "favour", "trouble", "difficulty", "business", "list", "name", "copy", "proof", "printer", "publisher",
    "editor", "professor", "director", "secretary", "committee", "government", "treasury", "colony",
    "expedition", "instrument", "microscope", "observation", "result", "rest", "part", "use", "place", "case",
    "fact", "doubt", "mind", "heart", "hand", "door", "window", "table", "room", "fire", "pen", "desk", "key",
    "child", "man", "woman", "servant", "gardener", "collector", "traveller", "flora", "catalogue", "description",
    "figure", "sketch", "memoir", "lecture", "address", "promise", "visit", "holiday", "illness", "journal",
    "packet", "case", "crate", "bulb", "palm", "orchid", "cactus", "grass", "soil", "climate", "harbour",
    "expense", "salary", "pension", "will", "executor", "trustee", "witness", "heir", "cousin", "uncle", "aunt",
    "nephew", "niece", "husband", "widow", "farm", "field", "furniture", "watch", "ring", "portrait", "picture",
)
EN_IRREGULAR_PLURAL = {"leaf": "leaves", "child": "children", "man": "men", "woman": "women", "species": "species",
                       "genus": "genera", "herbarium": "herbaria", "cactus": "cacti", "flora": "floras",
                       "wife": "wives", "half": "halves", "shelf": "shelves"}
EN_ADJS = (
    "good", "great", "small", "little", "large", "old", "new", "young", "dear", "kind", "long", "short", "fine",
    "poor", "rare", "common", "curious", "interesting", "excellent", "beautiful", "wretched", "happy", "glad",
    "sorry", "busy", "late", "early", "last", "next", "first", "whole", "several", "best",
    "better", "true", "certain", "full", "dry", "wet", "cold", "warm", "hot", "bad", "quiet", "heavy", "safe",
    "valuable", "useful", "tropical", "alpine", "British", "Indian", "American", "French", "native", "living",
    "dried", "fresh", "splendid", "admirable", "tiresome", "anxious", "grateful", "obliged", "sad", "strange",
    "private", "public", "official", "proper", "extraordinary", "delightful", "lovely", "ugly",
)
EN_ADVS = ("very", "quite", "much", "indeed", "always", "never", "often", "already", "still", "hardly",
           "really", "certainly", "probably", "perhaps", "soon", "now", "then", "again", "only", "also",
           "just", "almost", "truly", "greatly", "sadly")
# (base, past, past participle, transitive)
EN_VERBS = (
    ("send", "sent", "sent", True), ("write", "wrote", "written", True), ("read", "read", "read", True),
    ("find", "found", "found", True), ("see", "saw", "seen", True), ("hear", "heard", "heard", True),
    ("give", "gave", "given", True), ("take", "took", "taken", True), ("make", "made", "made", True),
    ("bring", "brought", "brought", True), ("buy", "bought", "bought", True), ("sell", "sold", "sold", True),
    ("lose", "lost", "lost", True), ("keep", "kept", "kept", True), ("leave", "left", "left", True),
    ("receive", "received", "received", True), ("examine", "examined", "examined", True),
    ("describe", "described", "described", True), ("collect", "collected", "collected", True),
    ("pack", "packed", "packed", True), ("forward", "forwarded", "forwarded", True),
    ("return", "returned", "returned", True), ("post", "posted", "posted", True), ("pay", "paid", "paid", True),
    ("sign", "signed", "signed", True), ("arrange", "arranged", "arranged", True),
    ("order", "ordered", "ordered", True), ("compare", "compared", "compared", True),
    ("publish", "published", "published", True), ("print", "printed", "printed", True),
    ("correct", "corrected", "corrected", True), ("copy", "copied", "copied", True),
    ("enclose", "enclosed", "enclosed", True), ("mention", "mentioned", "mentioned", True),
    ("visit", "visited", "visited", True), ("meet", "met", "met", True), ("thank", "thanked", "thanked", True),
    ("miss", "missed", "missed", True), ("expect", "expected", "expected", True), ("name", "named", "named", True),
    ("finish", "finished", "finished", True), ("begin", "began", "begun", True), ("lend", "lent", "lent", True),
    ("show", "showed", "shown", True), ("tell", "told", "told", True), ("ask", "asked", "asked", True),
    ("answer", "answered", "answered", True), ("want", "wanted", "wanted", True), ("like", "liked", "liked", True),
    ("bequeath", "bequeathed", "bequeathed", True), ("appoint", "appointed", "appointed", True),
    ("come", "came", "come", False), ("go", "went", "gone", False), ("stay", "stayed", "stayed", False),
    ("arrive", "arrived", "arrived", False), ("work", "worked", "worked", False), ("wait", "waited", "waited", False),
    ("travel", "travelled", "travelled", False), ("sail", "sailed", "sailed", False),
    ("rest", "rested", "rested", False),
    ("return", "returned", "returned", False), ("write", "wrote", "written", False), ("live", "lived", "lived", False),
    ("recover", "recovered", "recovered", False), ("start", "started", "started", False),
)
EN_MODALS = ("shall", "will", "would", "should", "could", "must", "may", "might", "cannot", "can", "did not",
             "shall not", "need not", "hope to", "mean to", "ought to", "am going to")
EN_PREPS = ("in", "at", "to", "from", "with", "for", "by", "on", "about", "of", "after", "before", "through",
            "under", "near", "without", "towards", "upon", "into")
EN_CONJ = ("and", "but", "as", "though", "since", "when", "if", "so that", "because", "for", "while", "&", "or",
           "unless", "which", "that", "so")
EN_PLACES = (lambda r: f"at {r.choice(EN_CITIES)}", lambda r: f"in {r.choice(EN_CITIES)}", "by the next post",
             "by the steamer", "at Kew", "in the herbarium", "by return of post", "in the spring", "this week",
             "last year", "next month", "for the present", "at once", "in a few days", "before long",
             lambda r: f"on {r.choice(EN_DAYS)}", lambda r: f"on the {random_date(r, 'en')}", "&c.", "at home",
             "in town", "in the country", "to the Museum", "from India", "to the Cape", "for the Flora")
EN_FORMULAS: tuple[Callable[[random.Random], str], ...] = (
    lambda r: f"My dear {r.choice(EN_LAST)},",
    lambda r: f"My dear {r.choice(('Sir', 'Madam', 'Friend', 'Father', 'Mother', 'Brother'))},",
    lambda r: f"Dear {r.choice(EN_TITLES[:7])} {r.choice(EN_LAST)},",
    lambda r: f"{random_address(r, 'en')}, {random_date(r, 'en')}.",
    lambda r: f"I am much obliged to you for your letter of the {random_date(r, 'en')}.",
    lambda r: "Many thanks for the seeds & specimens, which arrived safely.",
    lambda r: f"Believe me, ever yours very truly, {random_name(r, 'en')}",
    lambda r: "I remain, dear Sir, your obedient servant,",
    lambda r: f"Ever yours affectionately, {r.choice(EN_FIRST)}",
    lambda r: f"Yours {r.choice(('faithfully', 'sincerely', 'very truly', 'ever', 'most truly'))},",
    lambda r: f"I give and bequeath unto my {r.choice(('wife', 'son', 'daughter', 'nephew', 'sister'))} "
              f"{random_name(r, 'en')} the sum of {random_money(r, 'en')}.",
    lambda r: f"This is the last Will and Testament of me {random_name(r, 'en')} of {random_address(r, 'en')}.",
    lambda r: f"In witness whereof I have hereunto set my hand this {random_date(r, 'en')}.",
    lambda r: "Signed by the said testator in our presence, who in his presence have signed as witnesses.",
    lambda r: f"I appoint {random_name(r, 'en')} and {random_name(r, 'en')} executors of this my Will.",
    lambda r: f"P.S. Pray remember me to {r.choice(('Mrs.', 'Miss', 'Lady'))} {r.choice(EN_LAST)}.",
    lambda r: f"The parcel of {r.randint(3, 60)} plants left by the steamer on the {random_date(r, 'en')}.",
    lambda r: f"I enclose a cheque for {random_money(r, 'en')}; kindly acknowledge receipt.",
    lambda r: f"He said \"{r.choice(('it will do', 'never mind', 'not yet', 'by all means'))}\" and went away.",
    lambda r: f"Have you seen {r.choice(EN_LAST)}'s paper on the {_en_plural(r.choice(EN_NOUNS))}?",
    lambda r: f"Will you come to us on {r.choice(EN_DAYS)} & stay till {r.choice(EN_DAYS)}?",
    lambda r: f"What a {r.choice(('wretched', 'glorious', 'dreadful', 'lovely'))} "
              f"{r.choice(('summer', 'winter', 'spring', 'week'))} we have had!",
    lambda r: f"The account stands thus: {random_money(r, 'en')} received, {random_money(r, 'en')} paid.",
    lambda r: f"({r.choice(('see', 'cf.', 'vide'))} {_number(r, 'en')})",
    lambda r: f"It is {r.choice(('a', 'the'))} {r.choice(EN_ADJS)} {r.choice(EN_NOUNS)} - "
              f"{r.choice(('I think', 'I fear', 'no doubt', 'they say'))}.",
    lambda r: f"I cannot tell you how {r.choice(('glad', 'sorry', 'grateful', 'pleased'))} I was to hear it!",
    lambda r: f"{r.choice(('Mr', 'Dr', 'St'))}^{r.choice(('s', 'r', 't'))} {r.choice(EN_LAST)} [?] called yesterday.",
    lambda r: f"Address: {random_name(r, 'en')}, {random_address(r, 'en')}",
    lambda r: f"We sail on the {random_date(r, 'en')} for {r.choice(EN_CITIES)} & shall be away "
              f"{r.randint(2, 9)} months.",
    lambda r: f"{r.randint(2, 40)} {_en_plural(r.choice(EN_NOUNS))} @ {random_money(r, 'en')} each.",
)


def _en_plural(noun: str) -> str:
    if noun in EN_IRREGULAR_PLURAL:
        return EN_IRREGULAR_PLURAL[noun]
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _en_np(r: random.Random) -> tuple[str, bool]:
    """A noun phrase and whether it is plural."""
    if r.random() < 0.1:
        return random_name(r, "en"), False
    plural = r.random() < 0.3
    noun = r.choice(EN_NOUNS)
    if plural:
        noun = _en_plural(noun)
        det = r.choice(("the", "my", "your", "his", "her", "our", "their", "these", "those", "some", "many",
                        "several", "two", "three", "a few", "all the", "", "no", "such"))
    else:
        det = r.choice(("the", "my", "your", "his", "her", "our", "this", "that", "a", "a", "every", "one",
                        "the same", "another", "no"))
    words = [det] if det else []
    if r.random() < 0.35:
        words.append(r.choice(EN_ADJS))
    words.append(noun)
    if r.random() < 0.12:
        words += ["of", r.choice(("India", "the Cape", "Ceylon", "Java", "the Himalaya", "the Colony"))
                  if r.random() < 0.5 else _en_np(r)[0]]
    return " ".join(words), plural


def _en_clause(r: random.Random) -> str:
    pron = r.random()
    if pron < 0.55:
        subject = r.choice(("I", "I", "I", "we", "we", "you", "he", "she", "they", "it"))
        plural = subject in ("we", "you", "they")
    else:
        subject, plural = _en_np(r)
    base, past, pp, transitive = r.choice(EN_VERBS)
    adv = r.choice(EN_ADVS) + " " if r.random() < 0.25 else ""
    form = r.random()
    if form < 0.3:
        modal = r.choice(EN_MODALS)
        if modal == "am going to" and subject != "I":
            modal = "will"
        verb = f"{modal} {adv}{base}"
    elif form < 0.55:
        have = "have" if subject in ("I", "we", "you", "they") or plural else "has"
        verb = f"{r.choice((have, 'had'))} {adv}{pp}"
    elif form < 0.8:
        verb = f"{adv}{past}"
    else:
        if r.random() < 0.5:
            be = "am" if subject == "I" else "are" if plural or subject == "you" else "is"
        else:
            be = "were" if plural or subject in ("you", "we", "they") else "was"
        verb, transitive = f"{be} {adv}{r.choice(EN_ADJS)}", False
    parts = [subject, verb]
    if transitive:
        parts.append(r.choice(("it", "them", "him", "her")) if r.random() < 0.15 else _en_np(r)[0])
    if r.random() < 0.5:
        place = r.choice(EN_PLACES)
        parts.append(place(r) if callable(place) else place)
    elif r.random() < 0.3:
        parts += [r.choice(EN_PREPS), _en_np(r)[0]]
    return " ".join(parts)


def _en_sentence(r: random.Random) -> str:
    if r.random() < 0.25:
        s = r.choice(EN_FORMULAS)(r)
    else:
        s = _en_clause(r)
        while r.random() < 0.4:
            joiner = r.choice((", ", ", ", "; ", " - ", ": ", " ")) if r.random() < 0.6 else " "
            s += f"{joiner}{r.choice(EN_CONJ)} {_en_clause(r)}"
        if r.random() < 0.08:
            s += f" ({r.choice(('see', 'vide', 'I think', 'no.', 'cf.'))} {_number(r, 'en')})"
        elif r.random() < 0.08:
            s += f", {r.choice(('for', 'at', 'about', 'costing'))} {random_money(r, 'en')}"
        s = s[0].upper() + s[1:]
        s += r.choices((".", "!", "?", "...", ";", ":"), weights=(20, 1.2, 1, 0.5, 1, 0.5))[0]
    words = s.split()
    words = [{"a": "an", "A": "An"}[w] if w in ("a", "A") and _en_vowel_sound(n) else w
             for w, n in zip(words, [*words[1:], ""], strict=True)]
    return _DOUBLE_STOP.sub(".", " ".join(words))


def _en_vowel_sound(word: str) -> bool:
    w = word.lower()
    if w.startswith(("hour", "honour", "honest", "heir")):
        return True
    return w[:1] in "aeio" or (w[:1] == "u" and not w.startswith(("use", "usu", "uni", "ufo")))


# ---------------------------------------------------------------------------
# French
# ---------------------------------------------------------------------------

# (noun, gender)
FR_NOUNS = tuple((w[:-2], w[-1]) for w in (
    "lettre f", "maison f", "ami m", "amie f", "frère m", "sœur f", "père m", "mère f", "femme f", "fils m",
    "fille f", "enfant m", "famille f", "testament m", "notaire m", "bien m", "argent m", "somme f", "rente f",
    "banque f", "compte m", "mobilier m", "meuble m", "terre f", "champ m", "jardin m", "village m", "ville f",
    "rue f", "église f", "mairie f", "école f", "régiment m", "guerre f", "front m", "tranchée f", "soldat m",
    "capitaine m", "camarade m", "patrie f", "devoir m", "cœur m", "âme f", "vie f", "mort f", "jour m",
    "nuit f", "matin m", "soir m", "semaine f", "mois m", "année f", "hiver m", "été m", "printemps m",
    "automne m", "temps m", "pluie f", "santé f", "nouvelle f", "journal m", "livre m", "cahier m", "papier m",
    "plume f", "encre f", "photographie f", "paquet m", "colis m", "voyage m", "train m", "gare f", "bateau m",
    "port m", "mer f", "montagne f", "rivière f", "forêt f", "fleur f", "arbre m", "pays m", "langue f",
    "espéranto m", "congrès m", "réunion f", "société f", "groupe m", "président m", "secrétaire m",
    "membre m", "cours m", "élève m", "professeur m", "monde m", "paix f", "pensée f", "souvenir m",
    "affection f", "amitié f", "bonheur m", "chagrin m", "peine f", "joie f", "espoir m", "prière f",
    "messe f", "tombe f", "cimetière m", "héritier m", "légataire m", "neveu m", "nièce f", "cousin m",
    "cousine f", "oncle m", "tante f", "épouse f", "mari m", "veuve f", "propriété f", "ferme f", "vigne f",
    "cheval m", "vache f", "blé m", "récolte f", "montre f", "bague f", "bijou m", "portrait m", "chambre f",
    "table f", "lit m", "feu m", "hôpital m", "médecin m", "juge m", "thermomètre m", "écrit m", "usine f",
    "ouvrier m", "atelier m", "bureau m", "courrier m", "adresse f", "idée f", "fraternité f", "époque f",
    "choix m", "objectif m", "croisière f", "capitale f", "république f", "œuvre f", "honneur m", "hôtel m",
    "fenêtre f", "courette f", "chemin m", "côté m", "dépôt m", "reçu m", "titre m", "action f", "valeur f",
    "créance f", "dette f", "frais m", "part f", "moitié f", "totalité f", "usufruit m", "vœu m", "Dieu m",
))
FR_IRREGULAR_PLURAL = {"œil": "yeux", "travail": "travaux"}
# (masculine, feminine, before the noun)
FR_ADJS = tuple((a, b, p == "+") for a, b, p in (w.split() for w in (
    "cher chère +", "bon bonne +", "petit petite +", "grand grande +", "jeune jeune +", "pauvre pauvre +",
    "dernier dernière +", "premier première +", "seul seule +", "long longue +", "gros grosse +",
    "entier entière -", "français française -", "heureux heureuse -", "malheureux malheureuse -",
    "triste triste -", "lourd lourde -", "simple simple -", "modeste modeste -", "personnel personnelle -",
    "universel universelle -", "humain humaine -", "moderne moderne -", "ancien ancienne -",
    "militaire militaire -", "religieux religieuse -", "civil civile -", "public publique -",
    "sincère sincère -", "profond profonde -", "fidèle fidèle -", "légitime légitime -",
    "immobilier immobilière -", "mobilier mobilière -", "présent présente -", "suivant suivante -",
    "prochain prochaine -", "japonais japonaise -", "anglais anglaise -", "chaud chaude -", "froid froide -",
    "blanc blanche -", "noir noire -", "affreux affreuse -", "aimé aimée -", "regretté regrettée -",
    "autonome autonome -", "rationnel rationnelle -", "entier entière -", "vif vive -", "épais épaisse -",
    "complet complète -", "sûr sûre -", "inquiet inquiète -", "bref brève -", "naïf naïve -",
)))
# Verbs: infinitive, present (je, il, nous, vous, ils), past participle, transitive.
_FR_IRREGULAR = (
    "être|suis est sommes êtes sont|été|-", "avoir|ai a avons avez ont|eu|t", "aller|vais va allons allez vont|allé|-",
    "faire|fais fait faisons faites font|fait|t", "pouvoir|peux peut pouvons pouvez peuvent|pu|-",
    "vouloir|veux veut voulons voulez veulent|voulu|t", "devoir|dois doit devons devez doivent|dû|t",
    "savoir|sais sait savons savez savent|su|t", "écrire|écris écrit écrivons écrivez écrivent|écrit|t",
    "recevoir|reçois reçoit recevons recevez reçoivent|reçu|t",
    "envoyer|envoie envoie envoyons envoyez envoient|envoyé|t",
    "attendre|attends attend attendons attendez attendent|attendu|t", "croire|crois croit croyons croyez croient|cru|-",
    "léguer|lègue lègue léguons léguez lèguent|légué|t", "prendre|prends prend prenons prenez prennent|pris|t",
    "mettre|mets met mettons mettez mettent|mis|t", "dire|dis dit disons dites disent|dit|t",
    "lire|lis lit lisons lisez lisent|lu|t", "voir|vois voit voyons voyez voient|vu|t",
    "vendre|vends vend vendons vendez vendent|vendu|t", "perdre|perds perd perdons perdez perdent|perdu|t",
    "rendre|rends rend rendons rendez rendent|rendu|t",
    "connaître|connais connaît connaissons connaissez connaissent|connu|t",
    "finir|finis finit finissons finissez finissent|fini|t", "partir|pars part partons partez partent|parti|-",
    "venir|viens vient venons venez viennent|venu|-", "tenir|tiens tient tenons tenez tiennent|tenu|t",
    "acheter|achète achète achetons achetez achètent|acheté|t", "payer|paie paie payons payez paient|payé|t",
    "espérer|espère espère espérons espérez espèrent|espéré|-",
    "répondre|réponds répond répondons répondez répondent|répondu|-",
    "vivre|vis vit vivons vivez vivent|vécu|-", "traduire|traduis traduit traduisons traduisez traduisent|traduit|t",
    "apprendre|apprends apprend apprenons apprenez apprennent|appris|t",
    "révoquer|révoque révoque révoquons révoquez révoquent|révoqué|t",
)
_FR_REGULAR = ("donner", "laisser", "garder", "porter", "trouver", "chercher", "demander", "remercier", "oublier",
               "aimer", "penser", "quitter", "terminer", "préparer", "copier", "raconter", "présenter", "montrer",
               "apporter", "signer", "visiter", "rencontrer", "regarder", "écouter", "désirer", "souhaiter",
               "accepter", "compter", "confier", "réclamer", "recommander", "embrasser", "traverser", "habiter",
               "travailler", "étudier", "expédier", "adresser", "déclarer", "instituer", "partager", "soigner",
               "assurer", "toucher", "verser", "employer", "retrouver", "relire", "publier", "organiser", "saluer")


def _fr_verbs() -> tuple[tuple[str, tuple[str, ...], str, bool], ...]:
    verbs = []
    for spec in _FR_IRREGULAR:
        inf, forms, pp, t = spec.split("|")
        verbs.append((inf, tuple(forms.split()), pp, t == "t"))
    for inf in _FR_REGULAR:
        if inf == "relire":
            continue
        stem = inf[:-2]
        nous = stem + ("eons" if stem.endswith("g") else "ons")
        verbs.append((inf, (stem + "e", stem + "e", nous, stem + "ez", stem + "ent"), stem + "é",
                      inf not in ("travailler", "penser", "habiter")))
    return tuple(verbs)


FR_VERBS = _fr_verbs()
_FR_FORMS = {inf: forms for inf, forms, _, _ in FR_VERBS}
# verbs followed by an infinitive: "je dois partir", "nous espérons recevoir"
_FR_MODALS = ("pouvoir", "vouloir", "devoir", "devoir", "aller", "savoir", "espérer", "désirer", "compter",
              "souhaiter")
FR_PLACES = (lambda r: f"à {r.choice(FR_TOWNS)}", "en France", "au front", "à la maison", "chez nous",
             "chez mes parents", "dans les tranchées", lambda r: random_date(r, "fr"), "au plus tôt",
             "depuis longtemps", "cette semaine", "l'an dernier", "le mois prochain", "ce matin", "hier soir",
             "demain", "aujourd'hui", "après la guerre", "par le prochain courrier", "de tout cœur",
             "en ce moment", "pour toujours", "à mon retour", "au bureau", "à la gare", "en ville",
             lambda r: f"en {r.randint(1850, 1975)}", lambda r: f"chez {random_name(r, 'fr')}", "etc.")
FR_CONJ = ("et", "mais", "car", "donc", "parce que", "afin que", "quand", "si", "puis", "ou", "comme",
           "lorsque", "puisque", "et que", "où", "alors")
FR_PREPS = ("à", "de", "dans", "pour", "avec", "sans", "sur", "sous", "par", "après", "avant", "depuis",
            "pendant", "vers", "contre", "entre")
FR_FORMULAS: tuple[Callable[[random.Random], str], ...] = (
    lambda r: "Ceci est mon testament.",
    lambda r: f"Je soussigné{r.choice(('', 'e'))} {random_name(r, 'fr')}, demeurant {random_address(r, 'fr')}, "
              f"déclare faire mon testament ainsi qu'il suit :",
    lambda r: f"Je donne et lègue à {r.choice(('ma femme', 'mon fils', 'ma fille', 'mon neveu', 'ma sœur'))} "
              f"{random_name(r, 'fr')} la somme de {random_money(r, 'fr')}.",
    lambda r: "Je révoque tout testament antérieur.",
    lambda r: f"Je veux être enterré{r.choice(('', 'e'))} au cimetière de {r.choice(FR_TOWNS)}.",
    lambda r: "Je désire que mes obsèques soient simples et sans fleurs.",
    lambda r: f"Fait à {r.choice(FR_TOWNS)}, {random_date(r, 'fr')}.",
    lambda r: "Écrit en entier, daté et signé de ma main.",
    lambda r: f"Mon cher {r.choice((*FR_FIRST_M, 'ami', 'papa', 'frère', 'fils', 'Monsieur'))},",
    lambda r: f"Ma chère {r.choice((*FR_FIRST_F, 'maman', 'femme', 'sœur', 'amie', 'petite'))},",
    lambda r: f"{r.choice(('Monsieur le Maire', 'Cher Monsieur', 'Chers amis', 'Madame', 'Monsieur le Président'))},",
    lambda r: "Veuillez agréer, Monsieur, l'expression de mes sentiments distingués.",
    lambda r: f"Je t'embrasse de tout cœur, ton {r.choice(('fils', 'mari', 'frère', 'ami'))} qui t'aime.",
    lambda r: "Mille baisers à nos chers petits.",
    lambda r: f"Nous sommes toujours au repos à {r.choice(FR_TOWNS)} ; le temps est affreux.",
    lambda r: f"Si je viens à disparaître, je lègue tout ce que je possède à {random_name(r, 'fr')}.",
    lambda r: "Quoi qu'il arrive, je pense à vous.",
    lambda r: f"J'ai bien reçu ta lettre du {random_date(r, 'fr').removeprefix('le ')} et le colis.",
    lambda r: f"« Vive la France ! » criaient les {r.choice(('soldats', 'enfants', 'gens'))}.",
    lambda r: f"Le congrès d'espéranto de {r.choice(FR_TOWNS)} réunissait {r.randint(40, 900)} participants.",
    lambda r: f"(voir la lettre n° {r.randint(2, 99)})",
    lambda r: f"Il me reste {random_money(r, 'fr')} à la Banque de France, dont les reçus sont dans ma chambre.",
    lambda r: f"J'institue pour légataire universel {random_name(r, 'fr')}, {random_address(r, 'fr')}.",
    lambda r: f"Adresse : {random_name(r, 'fr')}, {random_address(r, 'fr')}",
    lambda r: "Ça ira mieux demain, n'est-ce pas ?",
    lambda r: f"À {r.choice(FR_TOWNS)}, le thermomètre marquait {r.randint(2, 39)}° à l'ombre.",
    lambda r: f"ÉTAT DES BIENS - {r.choice(('MAISON', 'FERME', 'TERRES', 'VALEURS'))} : {random_money(r, 'fr')}",
    lambda r: f"Œuvre de {random_name(r, 'fr')} ; voir aussi « {r.choice(('La Femme', 'Le Devoir', 'Nos Morts'))} ».",
    lambda r: f"{r.choice(('Reçu', 'Payé', 'Versé'))} la somme de {random_money(r, 'fr')} "
              f"le {random_date(r, 'fr').removeprefix('le ')}.",
    lambda r: f"Que Dieu vous garde tous ! {r.choice(('Adieu', 'Au revoir', 'À bientôt'))}, {r.choice(FR_FIRST_F)}.",
    lambda r: f"{r.choice(('M', 'Mad', 'S'))}^{r.choice(('r', 'e', 't'))} {r.choice(FR_LAST)} "
              "[illisible] est venu hier.",
    lambda r: f"Leur choix était bon & rationnel - {r.choice(('hélas', 'enfin', 'bref'))} !",
)
_FR_ELIDE = {"je", "me", "te", "se", "le", "la", "de", "ne", "que", "ce", "lorsque", "puisque", "jusque"}
_FR_H_ASPIRE = ("haut", "hasard", "héros", "hors", "haine", "hameau", "hangar", "honte", "hélas")


def _fr_vowel(word: str) -> bool:
    w = word.lower()
    return (w[:1] in "aeiouhàâäéèêëîïôöùûüœæ" and not w.startswith(_FR_H_ASPIRE)) or w == "y"


def _fr_plural_noun(noun: str) -> str:
    if noun in FR_IRREGULAR_PLURAL:
        return FR_IRREGULAR_PLURAL[noun]
    if noun.endswith(("s", "x", "z")):
        return noun
    if noun.endswith(("eau", "au", "eu")) or noun in ("bijou", "genou", "chou"):
        return noun + "x"
    if noun.endswith("al"):
        return noun[:-2] + "aux"
    return noun + "s"


def _fr_np(r: random.Random) -> tuple[str, int, str]:
    """A noun phrase, its person (1 = 3rd singular, 4 = 3rd plural) and its gender."""
    if r.random() < 0.1:
        name = random_name(r, "fr")
        return name, 1, "f" if name.startswith(("Mme", "Mlle", "Madame")) else "m"
    noun, gender = r.choice(FR_NOUNS)
    plural = r.random() < 0.25 and noun not in ("Dieu", "paix", "espéranto")
    adj = r.choice(FR_ADJS) if r.random() < 0.35 else None
    words = [_fr_plural_noun(noun) if plural else noun]
    if adj is not None:
        a = adj[1] if gender == "f" else adj[0]
        if plural and not a.endswith(("s", "x")):
            a += "s"
        if adj[2]:
            words.insert(0, a)
        else:
            words.append(a)
    first = words[0]
    if plural:
        det = r.choice(("les", "les", "mes", "tes", "ses", "nos", "vos", "leurs", "des", "ces", "quelques",
                        "plusieurs", "deux", "trois", "tous les" if gender == "m" else "toutes les"))
    else:
        kind = r.choice(("def", "def", "def", "indef", "poss", "poss", "dem", "chaque"))
        if kind == "def":
            det = "le" if gender == "m" else "la"
        elif kind == "indef":
            det = "un" if gender == "m" else "une"
        elif kind == "poss":
            owner = r.randrange(6)
            if owner >= 3:
                det = ("notre", "votre", "leur")[owner - 3]
            elif gender == "m" or _fr_vowel(first):
                det = ("mon", "ton", "son")[owner]
            else:
                det = ("ma", "ta", "sa")[owner]
        elif kind == "dem":
            det = ("cet" if _fr_vowel(first) else "ce") if gender == "m" else "cette"
        else:
            det = "chaque"
    if r.random() < 0.1:
        words += ["de", _fr_np(r)[0]]
    return " ".join([det, *words]), 4 if plural else 1, gender


def _fr_clause(r: random.Random, gender: str) -> str:
    if r.random() < 0.6:
        person = r.choices(range(5), weights=(5, 2, 2, 2, 1))[0]
        subject = ("je", r.choice(("il", "elle", "on")), "nous", "vous", r.choice(("ils", "elles")))[person]
        subj_gender = gender if person in (0, 2, 3) else ("f" if subject.startswith("elle") else "m")
    else:
        subject, person, subj_gender = _fr_np(r)
    plural = person >= 2
    inf, forms, pp, transitive = r.choice(FR_VERBS)
    negate = r.random() < 0.12
    form = r.random()
    infinitive = None
    if form < 0.35:
        verb = forms[person]
    elif form < 0.6:
        verb = ("ai", "a", "avons", "avez", "ont")[person]
        infinitive = pp if inf not in ("partir", "venir", "aller") else None
        if infinitive is None:  # verbs with être: the participle agrees with the subject
            verb = ("suis", "est", "sommes", "êtes", "sont")[person]
            infinitive = pp + ("e" if subj_gender == "f" else "") + ("s" if plural else "")
    elif form < 0.8:
        verb = _FR_FORMS[r.choice(_FR_MODALS)][person]
        infinitive = inf
    elif form < 0.9 and inf.endswith("er") and inf not in ("aller", "envoyer"):
        verb = inf + ("ai", "a", "ons", "ez", "ont")[person]  # the future of regular -er verbs
    else:
        verb = ("suis", "est", "sommes", "êtes", "sont")[person]
        adj = r.choice(FR_ADJS)
        word = adj[1] if subj_gender == "f" else adj[0]
        if plural and not word.endswith(("s", "x")):
            word += "s"
        infinitive, transitive = word, False
    words = [subject, "ne", verb, "pas"] if negate else [subject, verb]
    if infinitive:
        words.append(infinitive)
    if transitive and r.random() < 0.85:
        words.append(_fr_np(r)[0])
    if r.random() < 0.45:
        place = r.choice(FR_PLACES)
        words.append(place(r) if callable(place) else place)
    elif r.random() < 0.3:
        words += [r.choice(FR_PREPS), _fr_np(r)[0]]
    return " ".join(words)


def _fr_sentence(r: random.Random, gender: str) -> str:
    if r.random() < 0.25:
        s = r.choice(FR_FORMULAS)(r)
    else:
        s = _fr_clause(r, gender)
        while r.random() < 0.4:
            joiner = r.choice((", ", ", ", " ; ", " - ", " : ", " ")) if r.random() < 0.6 else " "
            s += f"{joiner}{r.choice(FR_CONJ)} {_fr_clause(r, gender)}"
        if r.random() < 0.08:
            s += f" ({r.choice(('voir', 'cf.', 'soit', 'environ'))} {_number(r, 'fr')})"
        elif r.random() < 0.08:
            s += f", {r.choice(('soit', 'pour', 'environ', 'plus'))} {random_money(r, 'fr')}"
        elif r.random() < 0.05:
            s += f" « {_fr_clause(r, gender)} »"
        s += r.choices((".", " !", " ?", "...", " ;", " :", "…"), weights=(20, 1.2, 1, 0.5, 1, 0.5, 0.3))[0]
    s = _DOUBLE_STOP.sub(".", _fr_fix(s.split()))
    return s[0].upper() + s[1:]


def _fr_fix(tokens: list[str]) -> str:
    """Apply elision (``je ai`` → ``j'ai``) then contraction (``de le`` → ``du``)."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        tok, nxt = tokens[i], tokens[i + 1] if i + 1 < len(tokens) else ""
        low = tok.lower()
        if nxt and low in _FR_ELIDE and _fr_vowel(nxt) and not (low == "ce" and nxt[:1] not in "eé"):
            out.append(tok[:-1] + "'" + nxt)
            i += 2
            continue
        if nxt and low == "si" and nxt.lower() in ("il", "ils"):
            out.append(tok[0] + "'" + nxt)
            i += 2
            continue
        out.append(tok)
        i += 1
    merged: list[str] = []
    for tok in out:
        if merged and merged[-1] in ("de", "De") and tok == "des":
            continue  # "de des lettres" → "de lettres"
        if merged and merged[-1] in ("de", "à", "De", "À") and tok in ("le", "les"):
            prep = merged.pop()
            table = {"de": ("du", "des"), "à": ("au", "aux")}[prep.lower()]
            word = table[tok == "les"]
            merged.append(word.capitalize() if prep[0].isupper() else word)
        else:
            merged.append(tok)
    return " ".join(merged)


# ---------------------------------------------------------------------------
# documents → lines
# ---------------------------------------------------------------------------


def _sentences(rng: random.Random, language: str) -> Iterator[str]:
    """An endless stream of sentences in one writer's habits."""
    if language == "en":
        while True:
            yield _en_sentence(rng)
    gender = rng.choice("mf")
    while True:
        yield _fr_sentence(rng, gender)


def _tokens(rng: random.Random, language: str) -> Iterator[str]:
    """Words of the stream, with a writer's habits: apostrophe, French punctuation spacing."""
    apostrophe = rng.choice(("'", "’")) if language == "fr" else rng.choice(("'", "'", "’"))
    tight = language == "en" or rng.random() < 0.3  # some French writers put no space before ; : ! ?
    for sentence in _sentences(rng, language):
        sentence = sentence.replace("'", apostrophe)
        if rng.random() < 0.03:  # headings and emphasis in capitals
            sentence = sentence.upper()
        if rng.random() < 0.04:
            sentence = sentence.replace(" - ", " – " if rng.random() < 0.5 else " — ").replace("...", "…")
        words = sentence.split()
        merged: list[str] = []
        for w in words:
            # never leave a punctuation mark or a closing quote alone at the start of a line
            if merged and (w in (";", ":", "!", "?", "»", "-", "–", "—") or merged[-1] in ("«", "(")):
                glue = "" if tight and w in (";", ":", "!", "?") else _NB
                merged[-1] = merged[-1] + glue + w
            else:
                merged.append(w)
        yield from merged


class _Words:
    """A word stream with one word of look-ahead, so a word that does not fit a line starts the next."""

    def __init__(self, tokens: Iterator[str]) -> None:
        self._tokens = tokens
        self._next: str | None = None

    def peek(self) -> str:
        if self._next is None:
            self._next = next(self._tokens)
        return self._next

    def pop(self) -> str:
        word = self.peek()
        self._next = None
        return word


def _line_from(words: _Words, target: int, min_chars: int, max_chars: int) -> str | None:
    """Take words while the line stays within ``target`` (and reaches ``min_chars`` if it can)."""
    taken: list[str] = []
    length = -1
    while True:
        tok = words.peek()
        if len(tok) > max_chars:  # cannot fit on any line
            words.pop()
            continue
        new = length + 1 + len(tok)
        if new > max_chars or (new > target and length >= min_chars):
            break
        taken.append(words.pop())
        length = new
    if length < min_chars:
        return None
    return " ".join(taken).replace(_NB, " ")


def random_line(rng: random.Random | np.random.Generator | int | None, language: str | None = None, *,
                min_chars: int = 15, max_chars: int = 70) -> str:
    """One line of handwriting text, ``min_chars``–``max_chars`` long, in ``language`` (``en``/``fr``).

    ``language=None`` picks one at random. Lines are cut from running text at a word
    boundary, like the real lines, and are already normalised (single spaces).

    >>> import random
    >>> a, b = random_line(random.Random(5)), random_line(random.Random(5))
    >>> a == b and 15 <= len(a) <= 70
    True
    """
    r = as_random(rng)
    if not 1 <= min_chars <= max_chars:
        raise ValueError("need 1 <= min_chars <= max_chars")
    lang = language or r.choice(LANGUAGES)
    if lang not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")
    while True:
        tokens = _Words(_tokens(r, lang))
        # start mid-sentence most of the time, as most real lines do
        for _ in range(r.randrange(12)):
            tokens.pop()
        target = int(r.triangular(min_chars, max_chars, min_chars + 0.55 * (max_chars - min_chars)))
        line = _line_from(tokens, target, min_chars, max_chars)
        if line is not None:
            return line


def random_paragraph(rng: random.Random | np.random.Generator | int | None, n_lines: int,
                     language: str | None = None, *, min_chars: int = 15, max_chars: int = 70) -> list[str]:
    """``n_lines`` consecutive lines of one text by one writer, wrapped at a wavering right margin.

    >>> import random
    >>> lines = random_paragraph(random.Random(1), 4, "fr", max_chars=40)
    >>> len(lines), all(15 <= len(x) <= 40 for x in lines)
    (4, True)
    """
    r = as_random(rng)
    lang = language or r.choice(LANGUAGES)
    if lang not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")
    tokens = _Words(_tokens(r, lang))
    width = r.randint(max(min_chars, (min_chars + 2 * max_chars) // 3), max_chars)
    lines: list[str] = []
    while len(lines) < n_lines:
        target = max(min_chars, min(max_chars, width + r.randint(-6, 3)))
        line = _line_from(tokens, target, min_chars, max_chars)
        if line is not None:
            lines.append(line)
    return lines
