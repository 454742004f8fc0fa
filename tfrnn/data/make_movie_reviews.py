"""The generator of tfrnn's embedded English movie-review sentiment data set.

Writes ``movie_reviews_train.csv`` and ``movie_reviews_test.csv`` (header ``text,label``,
labels ``pos``/``neg``) into ``tfrnn/data/resources`` (the ``embedded`` data source).

All text here was written for tfrnn: a few hundred hand-written review
sentences plus hand-written building blocks (aspects, evaluations,
intensifiers, negations, contrasts, invented titles and names) combined with
a seeded random generator.  Nothing is copied from IMDB, SST, Rotten Tomatoes
or any other existing dataset.  Running it twice produces identical files.

Usage::

    python -m tfrnn.data.make_movie_reviews [--out-dir DIR] [--seed N]
"""

from __future__ import annotations

import argparse
import csv
import random
import re
from pathlib import Path

SEED = 20240611
N_TRAIN_PER_LABEL = 1000
N_TEST_PER_LABEL = 200
N_TEST_HAND_PER_LABEL = 50  # hand-written sentences that only appear in test
MIN_WORDS, MAX_WORDS = 4, 40

OUT_DIR = Path(__file__).resolve().parent / "resources"

# ---------------------------------------------------------------------------
# Fully hand-written sentences
# ---------------------------------------------------------------------------

HAND_POS = [
    "An absolute joy from the first frame to the last.",
    "I laughed, I cried, and I immediately wanted to watch it again.",
    "Not bad at all for a film made on such a tiny budget.",
    "Never boring, never preachy, and never less than gripping.",
    "The kind of movie that reminds you why you fell in love with cinema.",
    "Every performance lands, and the script never puts a foot wrong.",
    "I went in expecting a cheap cash grab and came out grinning.",
    "A tender, funny little film that deserves a much bigger audience.",
    "Easily the best thing I have seen in a cinema this year.",
    "The last twenty minutes had the whole theatre holding its breath.",
    "What a wonderful surprise.",
    "Smart, warm and beautifully shot.",
    "It does not reinvent the genre, but it does everything right.",
    "Mara Voss is a revelation in the lead role.",
    "Quiet Engines is a small miracle of a film.",
    "The score alone is worth the price of admission.",
    "I was hooked within the first five minutes.",
    "A rare sequel that actually improves on the original.",
    "The jokes come thick and fast, and almost all of them land.",
    "Two hours flew by and I wanted more.",
    "Honestly one of the most satisfying endings I have seen in years.",
    "The cast clearly had a blast making this, and it shows.",
    "Moving without ever being manipulative.",
    "I can't stop thinking about that final shot.",
    "The chemistry between the two leads is electric.",
    "Funny, sad, and ultimately very hopeful.",
    "The script trusts its audience, which is refreshing.",
    "A gorgeous, patient film that rewards your attention.",
    "I did not expect a film about a lighthouse keeper to move me this much.",
    "Bring tissues, you will need them, in the best possible way.",
    "Hard to believe this is a debut feature; the direction is so assured.",
    "The action is crisp, readable and genuinely thrilling.",
    "Not a single wasted scene.",
    "It never once felt long, despite the three-hour runtime.",
    "Kids and adults in my screening were equally delighted.",
    "A warm hug of a movie.",
    "The dialogue crackles with wit from start to finish.",
    "Every frame looks like a painting.",
    "Surprisingly deep for what looks like a simple comedy.",
    "I would happily watch it again tomorrow.",
    "The villain is genuinely menacing, which raises the stakes beautifully.",
    "Ten out of ten, no notes.",
    "Five stars, and I do not hand those out lightly.",
    "The twist is clever and fair, and it recasts everything that came before it.",
    "I was worried it would be too sentimental, but it earns every tear.",
    "Some of the effects look a little dated, but the story is so strong that it hardly matters.",
    "It starts slowly, yet by the halfway mark I was completely invested.",
    "The first act is a bit clumsy, but the rest of the film more than makes up for it.",
    "Not perfect, but wonderfully entertaining.",
    "It is not flawless, but it is made with real care and it shows.",
    "A thoughtful, humane drama with a terrific central performance.",
    "Idris Kallen steals every scene he is in.",
    "The Lantern Keeper is the rare family film that adults will enjoy just as much.",
    "I came for the dinosaurs and stayed for the surprisingly moving father and son story.",
    "The pacing is so tight there is no room to breathe, and I loved it.",
    "Beautifully acted, beautifully written, beautifully made.",
    "lol I did not expect to cry at a cartoon about a toaster, but here we are",
    "ngl this was way better than it had any right to be",
    "okay this one is great, the soundtrack alone is incredible",
    "Went with my dad, we both loved it.",
    "Ten minutes in I knew I was in safe hands.",
    "A confident, stylish thriller that keeps you guessing.",
    "The humour is gentle and the heart is enormous.",
    "It handles a difficult subject with real grace.",
    "I was never bored for a second.",
    "Not once did I reach for my phone.",
    "I could not find a single thing to complain about.",
    "There is not a weak link in the entire cast.",
    "Far from the disaster I had been warned about; it is actually rather lovely.",
    "Despite a shaky start, it builds to a powerful and deeply satisfying climax.",
    "The production design is astonishing, down to the smallest prop.",
    "A film that manages to be both hilarious and heartbreaking.",
    "The screenplay is sharp, economical and full of surprises.",
    "Proof that a simple story told well can still knock you flat.",
    "It knows exactly what it wants to be and delivers it with style.",
    "Paper Moons is charming, funny and far smarter than it looks.",
    "An instant favourite of mine.",
    "Worth every single minute.",
    "I have already bought tickets to see it a second time.",
    "The performances are so natural it sometimes feels like a documentary.",
    "Lena Okafor gives a quietly devastating performance as the grieving mother.",
    "This is how you make a sequel.",
    "I left the cinema smiling and I am still smiling.",
    "A sweet, clever romance with real chemistry at its centre.",
    "It is rare to see a horror film this scary and this smart.",
    "The sound design makes every creak in the house feel dangerous.",
    "It deserves every award it gets.",
    "Exactly the kind of escapism I needed this week.",
    "An ambitious, sprawling epic that somehow holds together.",
    "The final act pulls every thread together with real skill.",
    "Teodor Brandt directs with the confidence of a seasoned master.",
    "A gripping story, brilliantly told.",
    "Even the minor characters feel like real people with lives of their own.",
    "I'd recommend it to anyone who loves a good mystery.",
    "The runtime is long, but I would not cut a single scene.",
    "You can tell everyone involved cared deeply about this story.",
    "Criminally underrated; track it down if you can.",
    "A delight for the eyes and the ears.",
    "It made me laugh harder than any comedy in recent memory.",
    "The writing is so good that even the exposition is entertaining.",
    "I expected to hate it and ended up loving it.",
    "A slow burn that pays off in spectacular fashion.",
    "The fight choreography is some of the best I have ever seen.",
    "Honestly, the trailer does not do it justice.",
    "Funnier, smarter and warmer than the first one.",
    "Glass Harbor is a haunting, beautifully crafted ghost story.",
    "Nothing about it feels lazy or rushed.",
    "The ending left me speechless, in a good way.",
    "Simple, sincere and completely charming.",
    "A triumph in every department.",
    "My whole family enjoyed it, which almost never happens.",
    "The child actors are remarkably good, which is no small feat.",
    "It is hard to imagine anyone else playing the role now.",
    "Saw it twice already. Still great.",
    "The world-building is rich without ever becoming confusing.",
    "I was on the edge of my seat for the entire final hour.",
    "A film with something real to say, and the skill to say it well.",
    "The cinematographer deserves a raise; every shot is stunning.",
    "Clever, fast and endlessly quotable.",
    "It is not the film I expected, but it is a better one.",
    "The musical numbers are catchy enough that I hummed them all the way home.",
    "A refreshingly honest look at friendship and growing older.",
    "Well worth seeking out.",
    "I have no complaints whatsoever.",
    "Iron Meadow is the best war film I have seen in a decade.",
    "Elias Wren makes a wonderfully sly villain.",
    "It is funny without being mean, and sweet without being sickly.",
    "The story could have been a cliche, but the execution makes it feel brand new.",
    "Yes, the premise is silly, but the film commits to it so completely that it works.",
    "By the end I genuinely cared about every one of these people.",
    "I really cannot recommend this one enough.",
    "Do yourself a favour and see it on the biggest screen you can find.",
    "A masterclass in building tension.",
    "The editing is razor sharp and the story never drags.",
    "Neon Parish is stylish, strange and utterly absorbing.",
    "A film I will be thinking about for a long time.",
    "Surprisingly touching, and very funny too.",
    "The dog deserves an award, and so does the rest of the cast.",
    "A lovely, unhurried film about small joys.",
    "Rarely has a two-hour movie felt this short.",
    "The plot is thin, but the performances are so good that I did not care.",
    "I was skeptical of the casting, but she absolutely nails it.",
    "Hilarious from beginning to end.",
    "It got a standing ovation at my screening, and it deserved it.",
    "A perfect Sunday afternoon movie.",
    "The mystery is genuinely hard to solve, and the answer is satisfying.",
    "Bold, weird and wonderful.",
    "I didn't expect much, but this turned out to be a real gem.",
    "It never talks down to its audience.",
    "The emotional payoff is huge and completely earned.",
    "The Winter Ledger is a rich, gripping period drama with a brilliant cast.",
    "From the opening credits I knew this was going to be special.",
    "This is the sort of film people will still be talking about in twenty years.",
    "The comic timing is impeccable.",
    "It left me feeling lighter than when I walked in.",
    "Sofia Drummond is magnetic, and the camera clearly loves her.",
    "The visual effects are seamless and never distract from the story.",
    "A brave, uncompromising film that pays off.",
    "Not the easiest watch, but an incredibly rewarding one.",
    "The quiet moments are just as powerful as the big ones.",
    "I laughed so hard I missed the next line.",
    "Everything about it just works.",
    "As a longtime fan of the books, I was thrilled with this adaptation.",
    "Kestrel Falls is proof that small films can have enormous hearts.",
    "Dark, funny and surprisingly hopeful, it is the best thing Ravi Castellan has directed.",
    "It is a crowd-pleaser in the best sense of the word.",
    "Four stars, and very nearly five.",
    "I do not usually like musicals, but this one won me over completely.",
    "An unexpectedly moving ending that I did not see coming.",
    "A long film, but one that never feels padded and constantly rewards patience, thanks to a "
    "sharp script, a superb ensemble cast and a director who knows exactly when to hold back.",
    "Whoever cast this deserves a medal.",
    "The kind of comedy you will be quoting with your friends for weeks.",
    "I am not a fan of horror, yet I enjoyed every terrifying minute.",
    "Nothing groundbreaking, but thoroughly enjoyable from start to finish.",
    "Dear reader, go and see this film.",
    "A modest little thriller that punches well above its weight.",
    "It is the most fun I have had at the movies in ages.",
    "Not boring for a single moment, which is impressive for a courtroom drama.",
]

HAND_NEG = [
    "Not worth the price of a ticket.",
    "I checked my watch more times than I can count.",
    "The cast is great, but the script is a total mess.",
    "That is two hours of my life I am never getting back.",
    "A lazy, cynical cash grab.",
    "The twist is obvious from the first ten minutes.",
    "Nothing happens, and it happens very slowly.",
    "I have seen better acting in a shampoo advert.",
    "The dialogue sounds like it was written by someone who has never heard people talk.",
    "Not funny, not scary, not anything really.",
    "What a waste of a talented cast.",
    "Loud, long and utterly forgettable.",
    "The editing is so choppy that the action scenes are impossible to follow.",
    "I fell asleep twice and did not miss anything.",
    "Beautiful to look at, but there is nothing going on underneath.",
    "It looks expensive, yet it feels completely empty.",
    "The ending is so rushed it feels like they ran out of money.",
    "Half the characters disappear without explanation.",
    "Salt and Static is a mess from start to finish.",
    "The jokes fall flat one after another.",
    "I wanted to like it, I really did, but it is just dull.",
    "A sequel nobody asked for and nobody needed.",
    "The villain's plan makes no sense whatsoever.",
    "The score is so loud it drowns out half the dialogue.",
    "Every plot twist is telegraphed well in advance.",
    "Painfully slow and painfully smug.",
    "The lead performance is so wooden it could be used as furniture.",
    "Whoever edited this should be kept away from computers.",
    "It is not so bad it's good; it is just bad.",
    "Don't waste your evening on this.",
    "I walked out after an hour, and I never walk out of films.",
    "The effects look unfinished, like a video game from twenty years ago.",
    "Too long, too loud and too pleased with itself.",
    "The romance has all the chemistry of two strangers at a bus stop.",
    "A promising premise buried under a pile of cliches.",
    "The first half is decent, but the second half completely falls apart.",
    "It has a few good moments, but they are buried in a sea of boredom.",
    "Some lovely shots cannot save a story this thin.",
    "Sofia Drummond does her best, but the script gives her nothing to work with.",
    "Nobody in this film behaves like a real human being.",
    "The whole thing feels like a first draft.",
    "Iron Meadow wastes its strong cast on a plodding, confused story.",
    "Predictable, preachy and about forty minutes too long.",
    "The characters are so unlikeable that I was rooting for the monster.",
    "lol what was that ending, seriously",
    "ngl i was bored out of my mind",
    "this was so bad my friend and i just started laughing at it",
    "Honestly, I expected so much more from this director.",
    "It never finds its tone, lurching from slapstick to tragedy and back again.",
    "The action is shot so shakily that I felt seasick.",
    "A dull, joyless slog.",
    "One star, and that is for the catering truck.",
    "Two out of ten, and I am being generous.",
    "The trailer was far better than the movie.",
    "All the best jokes were already in the trailer.",
    "The plot holes are big enough to drive a bus through.",
    "It tries to be clever and ends up being confusing.",
    "The pacing is all over the place.",
    "I could not tell you what the story was about, and I watched all of it.",
    "The humour is crude without ever being funny.",
    "There is no reason for this film to exist.",
    "The child actor is the only convincing performer in the entire film.",
    "It is not terrible, but it is not good either, and mostly it is just boring.",
    "Not nearly as clever as it thinks it is.",
    "Far from the masterpiece the critics promised.",
    "Not even the wonderful soundtrack can rescue this disaster.",
    "I did not laugh once.",
    "Never scary, never tense, never interesting.",
    "Not one character is worth caring about.",
    "A bloated, self-indulgent epic that forgets to tell a story.",
    "The director clearly had no idea how to end it.",
    "Everything about it feels recycled from better movies.",
    "The Orchid Protocol is a spy thriller with no thrills and no spies worth remembering.",
    "Teodor Brandt's direction is flat and lifeless.",
    "The accents are all over the map, and not in a charming way.",
    "It mistakes being loud for being exciting.",
    "A weak script and an even weaker ending.",
    "The emotional scenes feel forced and unearned.",
    "Stylish, sure, but painfully empty.",
    "Save your money and rewatch the original instead.",
    "I kept waiting for it to get good, and it never did.",
    "A film so bland it is already fading from my memory.",
    "The sound mix is awful; I could barely hear a word.",
    "Clumsy, heavy-handed and deeply boring.",
    "It feels like three different films stitched together badly.",
    "Even the usually reliable Idris Kallen looks bored.",
    "The mystery is solved by a coincidence, which is incredibly unsatisfying.",
    "The runtime is punishing and the payoff is nonexistent.",
    "Not worth your time, not worth your money.",
    "Disappointing in almost every way.",
    "A huge letdown for the whole franchise.",
    "What a mess this turned out to be.",
    "Avoid this one at all costs.",
    "The digital creature looks like it was made of modelling clay.",
    "Every character speaks in the same smug voice.",
    "The film is so in love with its own style that it forgets to have a pulse.",
    "Marrow Street had potential, but it squanders every bit of it.",
    "The big reveal made the whole audience groan.",
    "It is the kind of comedy that explains every joke twice.",
    "I admire the ambition, but the result is an incoherent mess.",
    "The performances are fine, but the story is so boring that it hardly matters.",
    "Lovely costumes, terrible everything else.",
    "The opening scene is great; unfortunately, it is all downhill from there.",
    "I expected a fun ride and got a lecture instead.",
    "This movie made me angry, and not in the intended way.",
    "The horror relies entirely on cheap jump scares.",
    "Hannah Ferrow is badly miscast as the hardened detective.",
    "The middle hour is a slog of repetitive scenes.",
    "A confused, sluggish thriller that never builds any tension.",
    "Hardly a single scene works as intended.",
    "The romance subplot is tacked on and completely unconvincing.",
    "I cannot recommend this to anyone.",
    "It ends three separate times and none of them satisfy.",
    "The script is full of lines nobody would ever say out loud.",
    "By the end I did not care who lived or died.",
    "A painfully unfunny comedy that wastes a good cast.",
    "Tedious from start to finish.",
    "The story is paper thin and the characters are even thinner.",
    "It wants to be profound but only manages to be pretentious.",
    "I regret buying the ticket.",
    "My kids were bored, and so was I.",
    "Dust and Daylight is all atmosphere and no substance.",
    "The fight scenes are so dark you cannot see who is hitting whom.",
    "There is a good film in here somewhere, but this is not it.",
    "It has the emotional depth of a puddle.",
    "The music swells at every moment to tell you what to feel, which gets old fast.",
    "Honestly, this is one of the worst films I have sat through in years.",
    "The sequel takes everything good about the original and throws it away.",
    "A few decent gags do not make up for ninety minutes of tedium.",
    "The two leads have zero chemistry.",
    "The exposition is clumsy and never stops.",
    "It is never as tense or as clever as it needs to be.",
    "It is a shame, because the first ten minutes are genuinely promising.",
    "The screenplay is a patchwork of cliches.",
    "Very pretty, very expensive and very, very boring.",
    "I was looking forward to this for months, and it let me down completely.",
    "Felix Arden gives a hammy, distracting performance that sinks every scene.",
    "Not a patch on the book.",
    "The so-called twist is borrowed from a dozen better films.",
    "It drags on and on with no sense of purpose.",
    "Overlong, underwritten and overacted.",
    "This is not a comedy, whatever the poster says.",
    "The world-building is confusing and the rules keep changing.",
    "Nobody seems to know what kind of movie they are making.",
    "The tone is so grim and humourless that it becomes exhausting.",
    "A forgettable film that is not even bad enough to be memorable.",
    "The premise is interesting, but the execution is lazy and sloppy.",
    "I have no idea how this got made.",
    "The villain is a cartoon and the hero is a blank.",
    "It looks like it was shot in a car park over a weekend.",
    "Everything is explained and nothing is felt.",
    "The actors deserve a much better script than this.",
    "A cold, distant film that kept me at arm's length.",
    "Too many characters, too many subplots and far too little reason to care.",
    "The final battle is a blur of noise and grey pixels.",
    "Not scary in the slightest.",
    "Not as good as everyone says.",
    "I wouldn't watch it again if you paid me.",
    "Blue Hour Motel has a great title and absolutely nothing else.",
    "Jonah Pirelli seems to be acting in a different, much sillier film.",
    "Some scenes are well acted, but the film as a whole is a chore.",
    "The dialogue is so stilted that even the good actors sound awkward.",
    "The comic relief is more annoying than funny.",
    "A dreary, colourless film with nothing to say.",
    "The plot relies on everyone making the dumbest possible choice.",
    "Poorly paced, poorly lit and poorly written.",
    "Even at ninety minutes it outstays its welcome.",
    "Pretty to look at but thoroughly dull to sit through.",
    "It starts well, but after the first act it loses its way completely and never recovers, "
    "leaving a talented cast stranded in a story that goes nowhere.",
    "If this is the future of the franchise, I am getting off the train.",
    "I really wanted to love it, but I could barely stay awake.",
    "The plot twists are random rather than surprising.",
    "Great poster, shame about the film.",
    "Nothing in it feels fresh or even slightly alive.",
    "The jump scares are loud, cheap and completely predictable.",
    "I laughed, but only at the scenes that were meant to be serious.",
    "Dear studio, please stop making these.",
    "Not good enough to recommend, not bad enough to laugh at.",
]

# ---------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------

TITLES = [
    "The Lantern Keeper",
    "Midnight Orchard",
    "Glass Harbor",
    "Paper Moons",
    "The Last Cartographer",
    "Iron Meadow",
    "Salt and Static",
    "Velvet Horizon",
    "Quiet Engines",
    "The Winter Ledger",
    "Brightwater",
    "Neon Parish",
    "The Ninth Lighthouse",
    "Copper Sparrow",
    "Dust and Daylight",
    "Marrow Street",
    "Tin Lanterns",
    "Echoes of Varrow",
    "The Paper Fox",
    "Kestrel Falls",
    "Blue Hour Motel",
    "The Orchid Protocol",
    "Lakehouse Nine",
    "Northbound Static",
    "The Cobalt Choir",
    "Harrowgate Junction",
    "Ash and Honey",
    "The Sleeping Tide",
    "Crimson Abacus",
    "The Tuesday Heist",
    "Orbit of Strangers",
    "Lemon Street Ghosts",
]

NAMES = [
    "Mara Voss",
    "Idris Kallen",
    "Teodor Brandt",
    "Lena Okafor",
    "Jonah Pirelli",
    "Sofia Drummond",
    "Ravi Castellan",
    "Hannah Ferrow",
    "Elias Wren",
    "Nadia Korhonen",
    "Tomas Quill",
    "Priya Halvorsen",
    "Owen Marchetti",
    "Ingrid Salas",
    "Felix Arden",
    "June Takahara",
    "Dario Lindqvist",
    "Amara Beck",
]

ROLES = [
    "the detective",
    "the grieving father",
    "the villain",
    "the ship's captain",
    "the reluctant hero",
    "the young widow",
    "the con artist",
    "the retired boxer",
    "the small-town mayor",
    "the lonely astronaut",
    "the fading rock star",
    "the ambitious lawyer",
    "the eccentric inventor",
    "the school teacher",
    "the hired assassin",
    "the runaway heiress",
    "the ghost",
    "the hard-nosed editor",
]

GENRES = [
    "thriller",
    "drama",
    "comedy",
    "romance",
    "horror film",
    "science fiction epic",
    "western",
    "musical",
    "war film",
    "heist movie",
    "family film",
    "documentary",
    "animated feature",
    "crime saga",
    "mystery",
    "superhero movie",
    "road movie",
    "coming-of-age story",
    "period piece",
    "biopic",
    "action movie",
    "ghost story",
    "satire",
    "space opera",
    "courtroom drama",
    "spy film",
    "romantic comedy",
]

# aspect -> noun phrases (text, plural?), aspect-specific positive / negative
# evaluations, and whether the generic evaluations also fit.
ASPECTS = {
    "acting": {
        "np": [
            ("the acting", False),
            ("the performances", True),
            ("the lead performance", False),
            ("the supporting cast", False),
            ("the ensemble", False),
            ("the cast", False),
        ],
        "pos": [
            "nuanced",
            "convincing",
            "magnetic",
            "compelling",
            "committed",
            "natural",
            "heartfelt",
            "pitch-perfect",
        ],
        "neg": ["wooden", "stiff", "hammy", "unconvincing", "flat", "overcooked", "awkward", "phoned in"],
        "generic": True,
    },
    "plot": {
        "np": [
            ("the plot", False),
            ("the story", False),
            ("the screenplay", False),
            ("the script", False),
            ("the central mystery", False),
            ("the premise", False),
        ],
        "pos": [
            "gripping",
            "clever",
            "tight",
            "engrossing",
            "inventive",
            "absorbing",
            "well constructed",
            "full of surprises",
        ],
        "neg": [
            "convoluted",
            "predictable",
            "nonsensical",
            "thin",
            "muddled",
            "incoherent",
            "riddled with holes",
            "paper thin",
        ],
        "generic": True,
    },
    "pacing": {
        "np": [("the pacing", False), ("the editing", False), ("the middle act", False), ("the first hour", False)],
        "pos": ["brisk", "taut", "tight", "well judged", "confident", "snappy", "propulsive"],
        "neg": ["sluggish", "glacial", "plodding", "uneven", "choppy", "lethargic", "all over the place"],
        "generic": False,
    },
    "score": {
        "np": [
            ("the score", False),
            ("the soundtrack", False),
            ("the music", False),
            ("the sound design", False),
            ("the songs", True),
        ],
        "pos": ["haunting", "gorgeous", "stirring", "memorable", "lush", "rousing", "catchy"],
        "neg": ["intrusive", "overbearing", "forgettable", "generic", "grating", "repetitive", "shrill"],
        "generic": True,
    },
    "cinematography": {
        "np": [
            ("the cinematography", False),
            ("the camera work", False),
            ("the visuals", True),
            ("the lighting", False),
            ("the photography", False),
            ("the shot composition", False),
        ],
        "pos": ["gorgeous", "stunning", "breathtaking", "crisp", "striking", "luminous", "elegant"],
        "neg": ["murky", "drab", "ugly", "shaky", "muddy", "washed out", "dingy"],
        "generic": True,
    },
    "dialogue": {
        "np": [
            ("the dialogue", False),
            ("the writing", False),
            ("the banter", False),
            ("the one-liners", True),
            ("the conversations", True),
        ],
        "pos": ["sharp", "witty", "natural", "crackling", "clever", "quotable", "smart"],
        "neg": ["clunky", "stilted", "wooden", "cringeworthy", "awkward", "leaden", "clumsy"],
        "generic": True,
    },
    "effects": {
        "np": [
            ("the visual effects", True),
            ("the special effects", True),
            ("the creature design", False),
            ("the digital effects", True),
            ("the action scenes", True),
            ("the stunts", True),
        ],
        "pos": ["seamless", "convincing", "spectacular", "dazzling", "thrilling", "inventive"],
        "neg": ["cheap", "cartoonish", "unconvincing", "dated", "shoddy", "rubbery", "incomprehensible"],
        "generic": True,
    },
    "ending": {
        "np": [
            ("the ending", False),
            ("the finale", False),
            ("the final act", False),
            ("the climax", False),
            ("the twist", False),
            ("the last scene", False),
        ],
        "pos": ["satisfying", "moving", "earned", "powerful", "perfect", "surprising", "cathartic"],
        "neg": ["rushed", "unsatisfying", "baffling", "abrupt", "unearned", "contrived", "limp"],
        "generic": True,
    },
    "characters": {
        "np": [
            ("the characters", True),
            ("the heroine", False),
            ("the villain", False),
            ("the main characters", True),
            ("the side characters", True),
            ("the hero", False),
        ],
        "pos": ["rich", "believable", "well drawn", "likeable", "complex", "memorable", "vivid"],
        "neg": ["thin", "flat", "one-dimensional", "unlikeable", "cardboard", "irritating", "bland"],
        "generic": True,
    },
    "humour": {
        "np": [
            ("the humour", False),
            ("the jokes", True),
            ("the comedy", False),
            ("the gags", True),
            ("the comic timing", False),
        ],
        "pos": ["hilarious", "clever", "witty", "genuinely funny", "charming", "sharp", "delightful"],
        "neg": ["juvenile", "flat", "tired", "unfunny", "forced", "crude", "painful"],
        "generic": False,
    },
    "runtime": {
        "np": [("the runtime", False), ("the length", False), ("the running time", False)],
        "pos": ["just right", "well judged", "lean", "perfectly judged", "never a burden"],
        "neg": ["bloated", "far too long", "exhausting", "punishing", "indulgent", "a real slog"],
        "generic": False,
    },
    "direction": {
        "np": [
            ("the direction", False),
            ("the filmmaking", False),
            ("the staging", False),
            ("the world-building", False),
            ("the production design", False),
        ],
        "pos": ["assured", "confident", "inventive", "precise", "masterful", "bold", "ambitious"],
        "neg": ["aimless", "clumsy", "heavy-handed", "listless", "confused", "lazy", "sloppy"],
        "generic": True,
    },
}

GENERIC_POS = [
    "excellent",
    "superb",
    "wonderful",
    "terrific",
    "outstanding",
    "fantastic",
    "brilliant",
    "great",
    "strong",
    "impressive",
    "remarkable",
    "first-rate",
    "top-notch",
    "solid",
    "engaging",
    "lovely",
    "marvellous",
    "exceptional",
]
GENERIC_NEG = [
    "awful",
    "terrible",
    "dreadful",
    "weak",
    "poor",
    "lazy",
    "dull",
    "forgettable",
    "sloppy",
    "disappointing",
    "mediocre",
    "bland",
    "amateurish",
    "tedious",
    "lifeless",
    "atrocious",
    "embarrassing",
    "underwhelming",
]

INT_POS = [
    "",
    "",
    "",
    "",
    "really ",
    "truly ",
    "genuinely ",
    "incredibly ",
    "remarkably ",
    "quite ",
    "pretty ",
    "wonderfully ",
    "consistently ",
    "surprisingly ",
    "mostly ",
    "fairly ",
    "absolutely ",
    "so ",
]
INT_NEG = [
    "",
    "",
    "",
    "",
    "really ",
    "truly ",
    "genuinely ",
    "incredibly ",
    "quite ",
    "pretty ",
    "utterly ",
    "painfully ",
    "a bit ",
    "somewhat ",
    "rather ",
    "frustratingly ",
    "surprisingly ",
    "so ",
    "hopelessly ",
]

EXTREME = {
    "outstanding",
    "pitch-perfect",
    "perfect",
    "first-rate",
    "top-notch",
    "fantastic",
    "exceptional",
    "superb",
    "excellent",
    "brilliant",
    "terrific",
    "marvellous",
    "sensational",
    "spectacular",
    "breathtaking",
    "masterful",
    "atrocious",
    "awful",
    "terrible",
    "dreadful",
    "hilarious",
    "wonderful",
    "stunning",
    "incoherent",
    "nonsensical",
    "cathartic",
    "seamless",
    "unfunny",
    "amateurish",
    "embarrassing",
}
INT_EXTREME_POS = ["", "", "", "absolutely ", "truly ", "really ", "simply ", "just "]
INT_EXTREME_NEG = ["", "", "", "absolutely ", "truly ", "really ", "simply ", "utterly ", "just "]

FILM_POS = [
    "gripping",
    "moving",
    "delightful",
    "clever",
    "thrilling",
    "charming",
    "heartfelt",
    "stunning",
    "funny",
    "smart",
    "rewarding",
    "wonderful",
    "excellent",
    "beautiful",
    "captivating",
    "gorgeous",
    "tender",
    "exhilarating",
    "thoughtful",
    "well-made",
    "beautifully acted",
    "sharply written",
    "hugely entertaining",
    "quietly powerful",
    "terrific",
    "joyful",
    "riveting",
]
FILM_NEG = [
    "tedious",
    "boring",
    "muddled",
    "forgettable",
    "lifeless",
    "clumsy",
    "hollow",
    "disappointing",
    "messy",
    "bloated",
    "predictable",
    "shallow",
    "pointless",
    "lazy",
    "joyless",
    "dreary",
    "incoherent",
    "sluggish",
    "badly written",
    "poorly acted",
    "deeply tiresome",
    "thoroughly mediocre",
    "half-hearted",
    "overlong",
    "cynical",
    "drab",
    "witless",
]

PERF_POS = [
    "magnetic",
    "convincing",
    "superb",
    "brilliant",
    "heartbreaking",
    "hilarious",
    "commanding",
    "luminous",
    "excellent",
    "terrific",
    "compelling",
    "riveting",
    "wonderful",
    "fearless",
    "sensational",
]
PERF_NEG = [
    "wooden",
    "stiff",
    "unconvincing",
    "flat",
    "forgettable",
    "bland",
    "hammy",
    "awkward",
    "grating",
    "lifeless",
    "irritating",
    "dull",
]
PERF_NEG_IS_ONLY = ["miscast", "lost", "badly miscast", "out of place"]  # "X is <adj> as ..."

DIR_NOUN_POS = [
    "real flair",
    "a sure hand",
    "remarkable confidence",
    "wit and precision",
    "great sensitivity",
    "a sharp eye for detail",
    "obvious love for the material",
    "terrific energy",
]
DIR_NOUN_NEG = [
    "a heavy hand",
    "no sense of rhythm",
    "very little imagination",
    "all the subtlety of a sledgehammer",
    "no feel for the material",
    "a baffling lack of focus",
    "no energy whatsoever",
    "zero sense of tension",
]

SCRIPT_POS = ["sharp", "witty", "clever", "tight", "smart", "beautifully structured"]
SCRIPT_NEG = ["clunky", "lazy", "muddled", "thin", "overwritten", "full of holes"]

OPENERS = [
    "Honestly,",
    "Frankly,",
    "To be honest,",
    "In my view,",
    "For me,",
    "Overall,",
    "I have to say",
    "Truth be told,",
    "If I'm being honest,",
    "I thought",
    "I felt",
    "In short,",
    "Put simply,",
    "As far as I'm concerned,",
    "Let me be clear:",
]
PAST_OPENERS = {"I thought", "I felt"}

CLOSERS_POS = [
    "Highly recommended.",
    "I would happily watch it again.",
    "Go and see it.",
    "Worth every penny.",
    "Do not miss it.",
    "You won't regret it.",
    "Eight out of ten.",
    "Four stars from me.",
    "A must-see.",
    "I loved it.",
    "Cannot wait to see it again.",
    "Well worth your time.",
    "Nine out of ten.",
    "Bring your friends.",
    "Definitely worth a watch.",
]
CLOSERS_NEG = [
    "Skip it.",
    "Save your money.",
    "Not worth the ticket price.",
    "I want those two hours back.",
    "Don't bother.",
    "Two stars at most.",
    "Three out of ten.",
    "One star from me.",
    "Avoid.",
    "What a waste.",
    "Wait for it to show up on television, or better yet, don't.",
    "Not recommended.",
    "I would not watch it again.",
    "A real letdown.",
    "Two out of ten.",
]

CONTRAST_TAIL_POS = [
    "and that is what really matters",
    "so I left happy",
    "and I would still recommend it",
    "which more than makes up for it",
    "and I enjoyed it overall",
    "so it is still well worth a look",
]
CONTRAST_TAIL_NEG = [
    "and that drags the whole film down",
    "which is a real shame",
    "so it is hard to recommend",
    "and the film never recovers",
    "and that ruins it for me",
    "so I left disappointed",
]

EXP_POS = [
    "kept me on the edge of my seat",
    "had me laughing from start to finish",
    "left me in tears in the best way",
    "stayed with me for days",
    "won me over completely",
    "made the time fly",
    "had me grinning all the way home",
    "surprised me in all the right ways",
    "held my attention the whole time",
    "exceeded my expectations",
    "gave me chills more than once",
    "made me want to call my mother",
    "left the whole audience cheering",
]
EXP_NEG = [
    "put me to sleep halfway through",
    "had me checking my phone constantly",
    "left me cold",
    "tested my patience",
    "made two hours feel like five",
    "lost me within the first twenty minutes",
    "bored me to tears",
    "left me wondering why I bothered",
    "fell apart in the second half",
    "never gave me a reason to care",
    "made me regret not staying home",
    "failed to hold my attention",
    "left the audience groaning",
]

EXP_SUBJ = [
    "{title}",
    "this film",
    "the movie",
    "this one",
    "it",
    "the whole thing",
    "the sequel",
    "this picture",
    "{title}",
]

VERB_POS = [
    "loved",
    "adored",
    "really enjoyed",
    "thoroughly enjoyed",
    "was moved by",
    "was gripped by",
    "had a blast with",
    "was charmed by",
    "was blown away by",
    "fell for",
]
VERB_NEG = [
    "hated",
    "was bored by",
    "could not stand",
    "was let down by",
    "struggled to sit through",
    "was annoyed by",
    "was disappointed by",
    "got nothing out of",
    "regret watching",
    "gave up on",
]
VERB_OBJ = [
    "this movie",
    "this film",
    "the whole thing",
    "{title}",
    "every minute of it",
    "it from start to finish",
    "this one",
]
VERB_OBJ_BAD_FOR = {"every minute of it": {"regret watching", "gave up on", "got nothing out of"}}

CMP_POS = [
    "a huge improvement over the first one",
    "even better than the original",
    "far better than the trailer suggests",
    "better than most films in its genre",
    "a worthy follow-up to the original",
    "much smarter than the average blockbuster",
    "better than it has any right to be",
    "one of the best films of the year",
]
CMP_NEG = [
    "a big step down from the original",
    "a pale imitation of far better films",
    "much worse than the trailer suggests",
    "weaker than the first film in every way",
    "a poor follow-up to a great original",
    "nowhere near as good as the original",
    "one of the worst films of the year",
    "a lesser copy of a dozen better movies",
]
CMP_SUBJ = ["{title}", "this sequel", "the remake", "this film", "it", "the new version", "the second instalment"]

EXPECT_LOW = [
    "I expected very little,",
    "I expected very little from {title},",
    "I went in with low expectations,",
    "I went into {title} with low expectations,",
    "I almost skipped this one,",
    "The trailer for {title} looked awful,",
    "My friends warned me off it,",
    "The reviews were mixed,",
    "I nearly walked out in the first ten minutes,",
    "On paper it sounded silly,",
    "I only went because my sister dragged me,",
]
EXPECT_HIGH = [
    "I had high hopes,",
    "I had high hopes for {title},",
    "The reviews were glowing,",
    "I loved the trailer,",
    "I was so excited for {title},",
    "I was so excited for this one,",
    "I adored the first film,",
    "Everyone told me {title} was brilliant,",
    "The premise sounded great,",
    "The cast looked amazing on paper,",
    "I had been waiting years for this,",
]
EXPECT_LINK = ["but", "yet", "but honestly"]

NEGATE_TO_POS = [
    "not {a} at all",
    "never {a}",
    "not once {a}",
    "not the least bit {a}",
    "anything but {a}",
    "far from {a}",
    "not remotely {a}",
    "never even slightly {a}",
]
NEGATE_TO_NEG = [
    "not {a}",
    "not particularly {a}",
    "not remotely {a}",
    "never {a}",
    "anything but {a}",
    "hardly {a}",
    "not nearly as {a} as it thinks",
    "not {a} in the slightest",
    "far from {a}",
    "never once {a}",
]

CASUAL_PREFIX = ["", "", "", "ngl ", "tbh ", "ok so ", "honestly ", "real talk, "]
CASUAL_SUFFIX = ["", "", " lol", "!!", " tbh", " honestly", " fr", " imo"]


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def a_an(word: str) -> str:
    return "an" if word[:1].lower() in "aeio" else "a"


def with_article(phrase: str) -> str:
    return f"{a_an(phrase)} {phrase}"


class Gen:
    """Builds review sentences from the building blocks above.

    Args:
        rng: random.Random. The seeded generator every choice draws from.
    """

    def __init__(self, rng: random.Random):
        self.r = rng

    def c(self, seq):
        return self.r.choice(seq)

    def p(self, prob: float) -> bool:
        return self.r.random() < prob

    # -- pieces -----------------------------------------------------------
    def title(self) -> str:
        return self.c(TITLES)

    def fill(self, template: str) -> str:
        return template.replace("{title}", self.title())

    def aspect(self, exclude=None):
        key = self.c([k for k in ASPECTS if k != exclude])
        np_, plural = self.c(ASPECTS[key]["np"])
        return key, np_, plural

    def be(self, plural: bool, past: bool) -> str:
        if past:
            return "were" if plural else "was"
        return "are" if plural else "is"

    def adj(self, key: str, label: str) -> str:
        spec = ASPECTS[key][label]
        if ASPECTS[key]["generic"] and self.p(0.35):
            return self.c(GENERIC_POS if label == "pos" else GENERIC_NEG)
        return self.c(spec)

    def intens(self, a: str, label: str) -> str:
        if " " in a:  # multi-word evaluations do not take intensifiers
            return a
        if a in EXTREME:  # non-gradable adjectives only take emphatic adverbs
            return self.c(INT_EXTREME_POS if label == "pos" else INT_EXTREME_NEG) + a
        return self.c(INT_POS if label == "pos" else INT_NEG) + a

    def intensified(self, key: str, label: str) -> str:
        return self.intens(self.adj(key, label), label)

    def clause(self, label: str, past=None, exclude=None):
        """'<aspect> is <evaluation>' with the given polarity."""
        key, np_, plural = self.aspect(exclude)
        if past is None:
            past = self.p(0.4)
        return key, f"{np_} {self.be(plural, past)} {self.intensified(key, label)}"

    def film_adj(self, label: str) -> str:
        a = self.c(FILM_POS if label == "pos" else FILM_NEG)
        if self.p(0.4):
            a = self.intens(a, label)
        return a

    def closer(self, label: str) -> str:
        return self.c(CLOSERS_POS if label == "pos" else CLOSERS_NEG)

    @staticmethod
    def opp(label: str) -> str:
        return "neg" if label == "pos" else "pos"

    # -- templates ----------------------------------------------------------
    def t_simple(self, label):
        past = self.p(0.4)
        opener = self.c(OPENERS) if self.p(0.35) else ""
        if opener in PAST_OPENERS:
            past = True
        _, cl = self.clause(label, past=past)
        s = f"{opener} {cl}".strip()
        if self.p(0.3):
            s = f"{s}. {self.closer(label)}"
        return s

    def t_two_same(self, label):
        past = self.p(0.4)
        k1, c1 = self.clause(label, past=past)
        _, c2 = self.clause(label, past=past, exclude=k1)
        joiner = self.c([", and", " and", ", while", ";"])
        s = f"{c1}{joiner} {c2}"
        if self.p(0.25):
            s = f"{s}. {self.closer(label)}"
        return s

    def t_contrast(self, label):
        past = self.p(0.4)
        o = self.opp(label)
        k1, c_opp = self.clause(o, past=past)
        _, c_main = self.clause(label, past=past, exclude=k1)
        form = self.r.randrange(6)
        if form == 0:
            s = f"{c_opp}, but {c_main}"
        elif form == 1:
            s = f"although {c_opp}, {c_main}"
        elif form == 2:
            s = f"{c_opp}; however, {c_main}"
        elif form == 3:
            s = f"{c_main}, even if {c_opp}"
        elif form == 4:
            s = f"sure, {c_opp}, but {c_main}"
        else:
            genre = self.c(GENRES)
            s = f"{c_opp}, but overall it is {with_article(self.film_adj(label) + ' ' + genre)}"
            return s
        if self.p(0.5):
            s += ", "
            s += self.c(CONTRAST_TAIL_POS if label == "pos" else CONTRAST_TAIL_NEG)
        return s

    def t_negated(self, label):
        o = self.opp(label)
        form = self.r.randrange(10)
        if form < 6:  # aspect level
            past = self.p(0.4)
            key, np_, plural = self.aspect()
            a = self.adj(key, o)
            neg = self.c(NEGATE_TO_POS if label == "pos" else [n for n in NEGATE_TO_NEG if "as it thinks" not in n])
            s = f"{np_} {self.be(plural, past)} {neg.format(a=a)}"
            if self.p(0.3):
                _, extra = self.clause(label, past=past, exclude=key)
                s = f"{s}, and {extra}"
        elif form < 8:  # film level
            t = self.c([self.title(), "the film", "this movie", "it"])
            a = self.c(FILM_NEG if label == "pos" else FILM_POS)
            neg = self.c(NEGATE_TO_POS if label == "pos" else NEGATE_TO_NEG)
            s = f"{t} is {neg.format(a=a)}"
        else:  # performer level
            name, role = self.c(NAMES), self.c(ROLES)
            a = self.c(PERF_NEG if label == "pos" else PERF_POS)
            neg = self.c(NEGATE_TO_POS if label == "pos" else NEGATE_TO_NEG)
            s = f"as {role}, {name} is {neg.format(a=a)}"
        if self.p(0.2):
            s = f"{s}. {self.closer(label)}"
        return s

    def t_title(self, label):
        t, genre = self.title(), self.c(GENRES)
        form = self.r.randrange(4)
        if form == 0:
            s = f"{t} is {with_article(self.film_adj(label) + ' ' + genre)}"
        elif form == 1:
            tail = self.c(
                [
                    "from start to finish",
                    "from beginning to end",
                    "all the way through",
                    "for most of its runtime",
                    "in almost every scene",
                ]
            )
            s = f"{t} is {self.film_adj(label)} {tail}"
        elif form == 2:
            _, cl = self.clause(label, past=False)
            s = f"{t} is {with_article(self.film_adj(label) + ' ' + genre)}, and {cl}"
        else:
            a1, a2, a3 = self.r.sample(FILM_POS if label == "pos" else FILM_NEG, 3)
            s = f"{a1}, {a2} and {a3}: that is {t} in a nutshell"
        if self.p(0.25):
            s = f"{s}. {self.closer(label)}"
        return s

    def t_person(self, label):
        name, role = self.c(NAMES), self.c(ROLES)
        perf = PERF_POS if label == "pos" else PERF_NEG
        form = self.r.randrange(6)
        if form == 0:
            a = self.c(perf + (PERF_NEG_IS_ONLY if label == "neg" else []))
            s = f"{name} is {self.intens(a, label)} as {role}"
        elif form == 1:
            s = f"{name} gives {with_article(self.c(perf))} performance as {role}"
        elif form == 2:
            s = f"as {role}, {name} is {self.intens(self.c(perf), label)}"
        elif form == 3:
            nouns = DIR_NOUN_POS if label == "pos" else DIR_NOUN_NEG
            s = f"{name} directs {self.title()} with {self.c(nouns)}"
        elif form == 4:
            key = "direction"
            s = f"{name}'s direction is {self.intensified(key, label)}"
        else:
            scr = SCRIPT_POS if label == "pos" else SCRIPT_NEG
            s = f"the script by {name} is {self.c(scr)}"
        if self.p(0.35):
            _, cl = self.clause(label, past=False)
            s = f"{s}, and {cl}"
        elif self.p(0.2):
            s = f"{s}. {self.closer(label)}"
        return s

    def t_experience(self, label):
        form = self.r.randrange(3)
        if form < 2:
            subj = self.fill(self.c(EXP_SUBJ))
            s = f"{subj} {self.c(EXP_POS if label == 'pos' else EXP_NEG)}"
        else:
            verb = self.c(VERB_POS if label == "pos" else VERB_NEG)
            objs = [o for o in VERB_OBJ if verb not in VERB_OBJ_BAD_FOR.get(o, set())]
            s = f"I {verb} {self.fill(self.c(objs))}"
        r = self.r.random()
        if r < 0.35:
            _, cl = self.clause(label, past=self.p(0.5))
            s = f"{s}, {self.c(['mostly because', 'largely because', 'partly because'])} {cl}"
        elif r < 0.55:
            s = f"{s}. {self.closer(label)}"
        return s

    def t_compare(self, label):
        subj = self.fill(self.c(CMP_SUBJ))
        s = f"{subj} is {self.c(CMP_POS if label == 'pos' else CMP_NEG)}"
        if self.p(0.4):
            _, cl = self.clause(label, past=False)
            s = f"{s}, and {cl}"
        return s

    def t_expect(self, label):
        start = self.fill(self.c(EXPECT_LOW if label == "pos" else EXPECT_HIGH))
        subj = self.fill(self.c(EXP_SUBJ))
        if self.p(0.6):
            rest = f"{subj} {self.c(EXP_POS if label == 'pos' else EXP_NEG)}"
        else:
            _, rest = self.clause(label, past=True)
        return f"{start} {self.c(EXPECT_LINK)} {rest}"

    TEMPLATES = [
        ("t_simple", 17),
        ("t_two_same", 9),
        ("t_contrast", 12),
        ("t_negated", 11),
        ("t_title", 10),
        ("t_person", 11),
        ("t_experience", 12),
        ("t_compare", 5),
        ("t_expect", 7),
    ]

    def sentence(self, label: str) -> str:
        names = [n for n, _ in self.TEMPLATES]
        weights = [w for _, w in self.TEMPLATES]
        s = getattr(self, self.r.choices(names, weights)[0])(label)
        return self.finish(s)

    def finish(self, s: str) -> str:
        s = re.sub(r"\s+", " ", s).strip()
        if self.p(0.07):  # casual register
            s = s.rstrip(".").lower()
            return (self.c(CASUAL_PREFIX) + s + self.c(CASUAL_SUFFIX)).strip()
        s = s[0].upper() + s[1:]
        # capitalise after sentence breaks produced by closers
        s = re.sub(r"(\. )([a-z])", lambda m: m.group(1) + m.group(2).upper(), s)
        if not s.endswith((".", "!", "?")):
            s += "!" if self.p(0.05) else "."
        return s


def norm_key(text: str) -> str:
    return re.sub(r"[^a-z0-9' ]+", "", text.lower()).strip()


def word_count(text: str) -> int:
    return len(text.split())


def build(seed: int = SEED):
    """Draws the train and test splits: hand-written sentences plus generated ones, no text twice.

    Args:
        seed: int. Seed of the random generator; the same seed gives the same rows.

    Returns:
        dict "train"/"test" -> list of (text, label) rows, shuffled.
    """
    rng = random.Random(seed)
    for hand in (HAND_POS, HAND_NEG):
        keys = [norm_key(t) for t in hand]
        assert len(keys) == len(set(keys)), "duplicate hand-written sentence"
        for t in hand:
            assert MIN_WORDS <= word_count(t) <= MAX_WORDS, t
    assert not {norm_key(t) for t in HAND_POS} & {norm_key(t) for t in HAND_NEG}

    seen = {norm_key(t) for t in HAND_POS + HAND_NEG}
    gen = Gen(rng)
    splits = {"train": [], "test": []}
    for label, hand in (("pos", HAND_POS), ("neg", HAND_NEG)):
        hand = list(hand)
        rng.shuffle(hand)
        hand_test = hand[:N_TEST_HAND_PER_LABEL]
        hand_train = hand[N_TEST_HAND_PER_LABEL:]
        n_gen_test = N_TEST_PER_LABEL - len(hand_test)
        n_gen_train = N_TRAIN_PER_LABEL - len(hand_train)
        generated = []
        attempts = 0
        while len(generated) < n_gen_test + n_gen_train:
            attempts += 1
            assert attempts < 200_000, "building blocks exhausted"
            s = gen.sentence(label)
            k = norm_key(s)
            if k in seen or not (MIN_WORDS <= word_count(s) <= MAX_WORDS):
                continue
            seen.add(k)
            generated.append(s)
        splits["test"] += [(t, label) for t in hand_test + generated[:n_gen_test]]
        splits["train"] += [(t, label) for t in hand_train + generated[n_gen_test:]]
    for rows in splits.values():
        rng.shuffle(rows)
    return splits


def write(splits, out_dir: Path) -> None:
    """Writes OUT_DIR/movie_reviews_<split>.csv for each split.

    Args:
        splits: dict. Split name -> list of (text, label) rows, as `build` returns.
        out_dir: Path. The folder to write into (made if missing).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        path = out_dir / f"movie_reviews_{name}.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["text", "label"])
            w.writerows(rows)
        print(f"wrote {path} ({len(rows)} rows)")


def main() -> None:
    """Command line: writes both files into --out-dir (tfrnn/data/resources by default)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", type=Path, default=OUT_DIR)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    write(build(args.seed), args.out_dir)


if __name__ == "__main__":
    main()
