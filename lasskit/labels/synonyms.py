"""The hand-made tables of :mod:`lasskit.labels`: synonyms, source words and words that need context.

All keys are plain English; they are reduced with :func:`lasskit.labels.words.stem` when the
tables are used, so one form of a word covers its plural, ``-ing`` and ``-ed`` forms. Targets are
AudioSet class names; a target the vocabulary in use does not have is skipped.

- :data:`SYNONYMS`: a word or phrase -> classes it names ("downpour" -> Rain, "barking" -> Dog
  and Bark). Used in addition to the vocabulary's own phrases; a longer phrase wins over a
  shorter one at the same place.
- :data:`NEVER_ALONE`: vocabulary phrases of one word too common in captions with another
  meaning to name a class on their own ("run" in "running water", "fly" in "a plane flies by",
  "noise"). Multi-word phrases holding them still count ("fly buzzing" via the synonym table).
- :data:`NOT_DERIVED`: classes that describe the recording or the room, not a sound source
  ("Field recording", a common Freesound tag; "Echo" is kept out by ``NEVER_ALONE``).
- :data:`HUMAN_WORDS` / :data:`ANIMAL_WORDS`: words that name a person or an animal as the
  source of a sound (see :data:`HUMAN_VERBS` and :data:`ANIMAL_VERBS`).
- :data:`HUMAN_VERBS`: words that name a human sound when a person makes it, but as often
  describe something else ("birds sing", "the engine hums", "wind whistles"). Their classes are
  kept only when the text names a person, or names no other source at all.
- :data:`ANIMAL_VERBS`: animal sounds that are as often said of machines or people ("the engine
  roars", "brakes squeal"). Kept only when the text names an animal; otherwise the word gives
  the classes listed here instead (often none).
- :data:`NAMES_NOTHING`: phrases holding a class's word that name no sound of that class ("hot
  dog", "horse power", "fire hydrant", "wind up"): they take their words out of matching.
- :data:`NEEDS`: classes kept only when the text also holds one of the listed words: genres
  whose name is also an everyday word ("country road", "heavy metal door") need a music word;
  ``Church bell`` (named by "church") needs a bell word ("a pipe organ in a church" is not one).
- :data:`VETOED_BY`: classes dropped when the text holds one of the listed words ("a game of
  cricket on the radio" names the sport, not the insect).
- :data:`CONTEXT`: a word whose class depends on another word being present anywhere in the
  text: ``{word: [(context words, classes), ..., (None, default classes)]}``.
"""

from __future__ import annotations

SYNONYMS: dict[str, tuple[str, ...]] = {
    # animals
    "bark": ("Dog", "Bark"), "barking dog": ("Dog", "Bark"), "woof": ("Dog", "Bark"), "puppy": ("Dog",),
    "dogs": ("Dog",), "hound": ("Dog",), "yap": ("Dog", "Yip"), "meow": ("Cat", "Meow"),
    "miaow": ("Cat", "Meow"), "kitten": ("Cat",), "kitty": ("Cat",), "purr": ("Cat", "Purr"),
    "rooster": ("Chicken, rooster",), "hen": ("Chicken, rooster",), "chick": ("Chicken, rooster", "Bird"),
    "cow": ("Cattle, bovinae",), "cows": ("Cattle, bovinae",), "cattle": ("Cattle, bovinae",),
    "bull": ("Cattle, bovinae",), "calf": ("Cattle, bovinae",), "moo": ("Cattle, bovinae", "Moo"),
    "pony": ("Horse",), "neigh": ("Horse", "Neigh, whinny"), "whinny": ("Horse", "Neigh, whinny"),
    "gallop": ("Horse", "Clip-clop"), "hoof": ("Horse", "Clip-clop"), "hooves": ("Horse", "Clip-clop"),
    "lamb": ("Sheep",), "baa": ("Sheep", "Bleat"), "oink": ("Pig", "Oink"), "piglet": ("Pig",),
    "duckling": ("Duck",), "quack": ("Duck", "Quack"), "geese": ("Goose",),
    "songbird": ("Bird",), "sparrow": ("Bird",), "robin": ("Bird",), "finch": ("Bird",),
    "blackbird": ("Bird",), "parrot": ("Bird",), "seagull": ("Gull, seagull",), "gulls": ("Gull, seagull",),
    "magpie": ("Bird",), "raven": ("Crow",), "woodpecker": ("Bird",), "cuckoo": ("Bird",),
    "dove": ("Pigeon, dove",), "pigeons": ("Pigeon, dove",), "birds": ("Bird",), "avian": ("Bird",),
    "chirp": ("Bird", "Chirp, tweet"), "tweet": ("Bird", "Chirp, tweet"), "warble": ("Bird",),
    "trill": ("Bird",), "birdsong": ("Bird vocalization, bird call, bird song",),
    "bird chirping": ("Bird", "Chirp, tweet"), "caw": ("Crow", "Caw"), "coo": ("Pigeon, dove", "Coo"),
    "cricket chirping": ("Cricket",), "crickets": ("Cricket",), "cicada": ("Insect",),
    "bee": ("Bee, wasp, etc.",), "bees": ("Bee, wasp, etc.",), "wasp": ("Bee, wasp, etc.",),
    "hornet": ("Bee, wasp, etc.",), "bugs": ("Insect",), "bug": ("Insect",), "insects": ("Insect",),
    "fly buzzing": ("Fly, housefly",), "housefly": ("Fly, housefly",), "toad": ("Frog",),
    "frogs": ("Frog",), "ribbit": ("Frog", "Croak"), "lion": ("Roaring cats (lions, tigers)",),
    "tiger": ("Roaring cats (lions, tigers)",), "wolf": ("Canidae, dogs, wolves",),
    "coyote": ("Canidae, dogs, wolves",), "rat": ("Rodents, rats, mice",), "squirrel": ("Rodents, rats, mice",),
    "whale": ("Whale vocalization",), "animal": ("Animal",), "creature": ("Animal",), "pet": ("Domestic animals, pets",),
    "livestock": ("Livestock, farm animals, working animals",), "farm animal": ("Livestock, farm animals, working animals",),
    "wildlife": ("Wild animals",), "monkey": ("Animal",), "elephant": ("Animal",),
    "donkey": ("Donkey, ass",), "goats": ("Goat",),
    # people
    "talk": ("Speech",), "speak": ("Speech",), "speech": ("Speech",), "say": ("Speech",),
    "chat": ("Speech", "Conversation"), "discuss": ("Speech", "Conversation"), "converse": ("Speech", "Conversation"),
    "voice": ("Human voice",), "voices": ("Human voice",), "murmur": ("Speech",), "mumble": ("Speech",),
    "announce": ("Speech",), "announcement": ("Speech",), "announcer": ("Speech",), "narrate": ("Narration, monologue", "Speech"),
    "word": ("Speech",), "sentence": ("Speech",), "language": ("Speech",), "speaker": ("Speech",),
    "lecture": ("Speech",), "conversation": ("Conversation", "Speech"), "dialogue": ("Conversation", "Speech"),
    "man speaking": ("Male speech, man speaking",), "man talking": ("Male speech, man speaking",),
    "male voice": ("Male speech, man speaking",), "man say": ("Male speech, man speaking",),
    "woman speaking": ("Female speech, woman speaking",), "woman talking": ("Female speech, woman speaking",),
    "female voice": ("Female speech, woman speaking",), "woman say": ("Female speech, woman speaking",),
    "child talking": ("Child speech, kid speaking",), "child speaking": ("Child speech, kid speaking",),
    "laugh": ("Laughter",), "giggle": ("Giggle", "Laughter"), "chuckle": ("Chuckle, chortle", "Laughter"),
    "sob": ("Crying, sobbing",), "weep": ("Crying, sobbing",), "baby crying": ("Baby cry, infant cry",),
    "infant": ("Baby cry, infant cry",), "shout": ("Shout",), "yell": ("Yell", "Shout"), "holler": ("Shout",),
    "cheer": ("Cheering",), "applaud": ("Applause",), "applause": ("Applause",), "clap": ("Clapping",),
    "whisper": ("Whispering",), "cough": ("Cough",), "sneeze": ("Sneeze",), "sniffle": ("Sniff",),
    "breath": ("Breathing",), "breathe": ("Breathing",), "inhale": ("Breathing",), "exhale": ("Breathing",),
    "snore": ("Snoring",), "gasp": ("Gasp",), "pant": ("Pant",), "sigh": ("Sigh",), "yawn": ("Yawn",),
    "burp": ("Burping, eructation",), "hiccup": ("Hiccup",), "chew": ("Chewing, mastication",),
    "munch": ("Chewing, mastication",), "slurp": ("Chewing, mastication",), "gargle": ("Gargling",),
    "footstep": ("Walk, footsteps",), "foot step": ("Walk, footsteps",), "step": ("Walk, footsteps",),
    "stomp": ("Walk, footsteps",), "stroll": ("Walk, footsteps",), "pace": ("Walk, footsteps",),
    "walk": ("Walk, footsteps",), "jog": ("Run",), "sprint": ("Run",), "shoe": ("Walk, footsteps",),
    "crowd": ("Crowd",), "audience": ("Crowd",), "chatter": ("Chatter",), "babble": ("Babbling",),
    "kids playing": ("Children playing",), "child playing": ("Children playing",), "playground": ("Children playing",),
    "choir": ("Choir",), "chant": ("Chant",), "singer": ("Singing",), "vocalist": ("Singing",),
    "hum a tune": ("Humming",), "woman sing": ("Female singing", "Singing"), "man sing": ("Male singing", "Singing"),
    "girl sing": ("Female singing", "Singing"), "boy sing": ("Male singing", "Singing"), "snap finger": ("Finger snapping",), "finger snap": ("Finger snapping",),
    "heartbeat": ("Heart sounds, heartbeat",),
    # music
    "music": ("Music",), "musical": ("Music",), "melody": ("Music",), "tune": ("Music",), "song": ("Music",),
    "instrument": ("Musical instrument",), "instruments": ("Musical instrument",), "band": ("Music",),
    "orchestra": ("Orchestra",), "concert": ("Music",), "musician": ("Music",), "note": ("Music",),
    "chord": ("Music",), "strum": ("Guitar",), "guitars": ("Guitar",), "pianist": ("Piano",),
    "drums": ("Drum",), "drummer": ("Drum",), "drumming": ("Drum",), "percussion": ("Percussion",),
    "flute": ("Flute",), "violin": ("Violin, fiddle",), "fiddle": ("Violin, fiddle",), "cello": ("Cello",),
    "trumpet": ("Trumpet",), "horn section": ("Brass instrument",), "saxophone": ("Saxophone",),
    "sax": ("Saxophone",), "synth": ("Synthesizer",), "synthesizer": ("Synthesizer",),
    "xylophone": ("Marimba, xylophone",), "marimba": ("Marimba, xylophone",), "harp": ("Harp",),
    "organ": ("Organ",), "accordion": ("Accordion",), "bagpipe": ("Bagpipes",), "music box": ("Music",),
    "wind chime": ("Wind chime",), "windchime": ("Wind chime",), "chimes": ("Chime",), "gong": ("Gong",),
    # weather and water
    "downpour": ("Rain",), "drizzle": ("Rain",), "rainfall": ("Rain",), "rainstorm": ("Rain", "Thunderstorm"),
    "raindrop": ("Raindrop", "Rain"), "rain drop": ("Raindrop", "Rain"), "shower of rain": ("Rain",),
    "storm": ("Thunderstorm",), "thunderclap": ("Thunder",), "lightning": ("Thunderstorm",),
    "breeze": ("Wind",), "gust": ("Wind",), "gale": ("Wind",), "blustery": ("Wind",), "windy": ("Wind",),
    "rainy": ("Rain",), "stormy": ("Thunderstorm",), "river": ("Stream",), "brook": ("Stream",),
    "creek": ("Stream",), "stream": ("Stream",), "flow": ("Water",), "trickle": ("Trickle, dribble",),
    "babble brook": ("Stream",), "fountain": ("Water",), "sea": ("Ocean",), "beach": ("Ocean",),
    "shore": ("Ocean", "Waves, surf"), "surf": ("Waves, surf",), "tide": ("Ocean",),
    "lake": ("Water",), "pond": ("Water",), "puddle": ("Water",), "wet": ("Water",), "splash": ("Splash, splatter",),
    "splatter": ("Splash, splatter",), "drip": ("Drip",), "droplet": ("Drip",), "drop of water": ("Drip",),
    "water drop": ("Drip",), "bubble": ("Gurgling",), "gurgle": ("Gurgling",), "faucet": ("Water tap, faucet",),
    "shower": ("Water",), "flush": ("Toilet flush",), "toilet": ("Toilet flush",), "bath": ("Bathtub (filling or washing)",),
    "bathtub": ("Bathtub (filling or washing)",), "sink": ("Sink (filling or washing)",), "boil": ("Boiling",),
    "kettle": ("Kettle whistle",), "waterfall": ("Waterfall",), "flame": ("Fire",),
    "campfire": ("Fire", "Crackle"), "fireplace": ("Fire", "Crackle"), "bonfire": ("Fire", "Crackle"),
    "burn": ("Fire",), "thunder": ("Thunder",),
    # vehicles
    "traffic": ("Traffic noise, roadway noise",), "highway": ("Traffic noise, roadway noise",),
    "cars": ("Car",), "automobile": ("Car",), "van": ("Car",), "taxi": ("Car",), "lorry": ("Truck",),
    "trucks": ("Truck",), "tractor": ("Engine",), "motorbike": ("Motorcycle",), "scooter": ("Motorcycle",),
    "moped": ("Motorcycle",), "motorcycle": ("Motorcycle",), "car pass": ("Car passing by", "Car"),
    "car drive": ("Car",), "vehicle pass": ("Car passing by", "Vehicle"), "drive by": ("Car passing by",),
    "tire": ("Car",), "tyre": ("Car",), "honk": ("Vehicle horn, car horn, honking",),
    "horn honk": ("Vehicle horn, car horn, honking",), "car horn": ("Vehicle horn, car horn, honking",),
    "train": ("Train",), "railway": ("Rail transport",), "railroad": ("Rail transport",), "rail": ("Rail transport",),
    "tram": ("Rail transport",), "trolley": ("Rail transport",), "locomotive": ("Train",),
    "subway": ("Subway, metro, underground",), "metro": ("Subway, metro, underground",),
    "tube train": ("Subway, metro, underground",), "plane": ("Fixed-wing aircraft, airplane",),
    "airplane": ("Fixed-wing aircraft, airplane",), "aeroplane": ("Fixed-wing aircraft, airplane",),
    "jet": ("Aircraft",), "airport": ("Aircraft",), "helicopter": ("Helicopter",), "boat": ("Boat, Water vehicle",),
    "ship": ("Ship",), "ferry": ("Boat, Water vehicle",), "canoe": ("Rowboat, canoe, kayak",),
    "bike": ("Bicycle",), "cyclist": ("Bicycle",), "skateboarder": ("Skateboard",),
    "ambulance": ("Ambulance (siren)", "Siren"), "police siren": ("Police car (siren)", "Siren"),
    "fire truck": ("Fire engine, fire truck (siren)",), "sirens": ("Siren",),
    "motor": ("Engine",), "engines": ("Engine",), "rev": ("Accelerating, revving, vroom",),
    "accelerate": ("Accelerating, revving, vroom",), "idle": ("Idling",), "engine start": ("Engine starting",),
    "start engine": ("Engine starting",), "lawnmower": ("Lawn mower",), "mower": ("Lawn mower",),
    "chain saw": ("Chainsaw",), "brake": ("Vehicle",), "skid": ("Skidding",),
    # home, tools, things
    "door": ("Door",), "doors": ("Door",), "slam": ("Slam", "Door"), "doorbell": ("Doorbell",),
    "door bell": ("Doorbell",), "cupboard": ("Cupboard open or close",), "cabinet": ("Cupboard open or close",),
    "drawer": ("Drawer open or close",), "dish": ("Dishes, pots, and pans",), "plate": ("Dishes, pots, and pans",),
    "pot": ("Dishes, pots, and pans",), "pan": ("Dishes, pots, and pans",), "cutlery": ("Cutlery, silverware",),
    "silverware": ("Cutlery, silverware",), "fork": ("Cutlery, silverware",), "spoon": ("Cutlery, silverware",),
    "knife": ("Cutlery, silverware",), "fry": ("Frying (food)",), "sizzle": ("Sizzle",), "microwave": ("Microwave oven",),
    "vacuum": ("Vacuum cleaner",), "hoover": ("Vacuum cleaner",), "hairdryer": ("Hair dryer",),
    "hair dryer": ("Hair dryer",), "zip": ("Zipper (clothing)",), "zipper": ("Zipper (clothing)",),
    "keys": ("Keys jangling",), "coin": ("Coin (dropping)",), "coins": ("Coin (dropping)",),
    "duct tape": ("Packing tape, duct tape",), "scissors": ("Scissors",), "shaver": ("Electric shaver, electric razor",),
    "razor": ("Electric shaver, electric razor",), "type": ("Typing",),
    "typing": ("Typing",), "typewriter": ("Typewriter",), "write": ("Writing",), "pen": ("Writing",),
    "pencil": ("Writing",), "clock": ("Clock",), "tick": ("Tick",), "tock": ("Tick-tock",), "ticking": ("Tick",),
    "bell": ("Bell",), "bells": ("Bell",), "church": ("Church bell",), "ring bell": ("Bell",),
    "cow bell": ("Cowbell",), "dog whistle": ("Whistle",),
    "ding": ("Ding",), "alarm": ("Alarm",), "beep": ("Beep, bleep",), "bleep": ("Beep, bleep",),
    "phone": ("Telephone",), "telephone": ("Telephone",), "cellphone": ("Telephone",), "ringtone": ("Ringtone",),
    "buzzer": ("Buzzer",), "siren": ("Siren",), "whistle blow": ("Whistle",), "fan": ("Mechanical fan",),
    "air conditioner": ("Air conditioning",), "printer": ("Printer",), "camera": ("Camera",),
    "shutter": ("Camera",), "cash register": ("Cash register",), "sewing": ("Sewing machine",),
    "machine": ("Mechanisms",), "machinery": ("Mechanisms",), "mechanism": ("Mechanisms",), "gear": ("Gears",),
    "ratchet": ("Ratchet, pawl",), "pulley": ("Pulleys",), "hammer": ("Hammer",), "nail": ("Hammer",),
    "saw": ("Sawing",), "drill": ("Drill",), "sandpaper": ("Sanding",),
    "power tool": ("Power tool",), "tool": ("Tools",), "tools": ("Tools",), "jackhammer": ("Jackhammer",),
    "construction": ("Tools",),
    "explode": ("Explosion",), "explosion": ("Explosion",), "blast": ("Explosion",), "gun": ("Gunshot, gunfire",),
    "gunshot": ("Gunshot, gunfire",), "shot": ("Gunshot, gunfire",), "shoot": ("Gunshot, gunfire",),
    "rifle": ("Gunshot, gunfire",), "pistol": ("Gunshot, gunfire",), "firework": ("Fireworks",),
    "firecracker": ("Firecracker",), "pop": ("Burst, pop",), "pop song": ("Pop music",), "balloon": ("Burst, pop",),
    "wood": ("Wood",), "wooden": ("Wood",), "log": ("Wood",), "plank": ("Wood",), "timber": ("Wood",),
    "stick": ("Wood",), "branch": ("Wood",), "twig": ("Wood",), "glass": ("Glass",), "bottle": ("Glass",),
    "clink": ("Chink, clink",), "shatter": ("Shatter",), "liquid": ("Liquid",), "pour": ("Pour",),
    "spray": ("Spray",), "stir": ("Stir",), "squirt": ("Spray",),
    "knock": ("Knock",), "thud": ("Thump, thud",), "thump": ("Thump, thud",),
    "bang": ("Bang",), "slap": ("Slap, smack",), "smack": ("Slap, smack",), "crash": ("Smash, crash",),
    "smash": ("Smash, crash",), "bounce": ("Bouncing",), "scrape": ("Scrape",), "scratch": ("Scratch",),
    "rub": ("Rub",), "grind": ("Grind",), "crumple": ("Crumpling, crinkling",), "crinkle": ("Crumpling, crinkling",),
    "crush": ("Crushing",), "tear": ("Tearing",), "rip": ("Tearing",), "rustle": ("Rustle",),
    "creak": ("Creak",), "squeak": ("Squeak",), "rattle": ("Rattle",), "clatter": ("Rattle",),
    "clank": ("Clang",), "clang": ("Clang",), "jingle": ("Jingle, tinkle",), "jangle": ("Jingle, tinkle",),
    "tinkle": ("Jingle, tinkle",), "whoosh": ("Whoosh, swoosh, swish",), "swoosh": ("Whoosh, swoosh, swish",),
    "swish": ("Whoosh, swoosh, swish",), "whir": ("Whir",), "whirr": ("Whir",), "click": ("Clicking",),
    "rumble": ("Rumble",), "crackle": ("Crackle",), "crunch": ("Crunch",), "fizz": ("Fizz",), "hiss": ("Hiss",),
    "buzz": ("Buzz",), "hum": ("Hum",), "drone": ("Hum",), "static": ("White noise",),
    "white noise": ("White noise",), "background noise": ("Background noise",), "ambient": ("Background noise",),
    "ambience": ("Background noise",), 
    "paper": ("Crumpling, crinkling",), "plastic bag": ("Crumpling, crinkling",), "gravel": ("Crunch",),
    "snow": ("Crunch",), "leaf": ("Rustling leaves",), "leaves rustle": ("Rustling leaves",),
    "radio": ("Radio",), "television": ("Television",), "tv": ("Television",),
}

NEVER_ALONE = frozenset({
    "run", "fly", "noise", "sound", "roll", "fill", "pump", "whip", "flap", "pulse", "patter",
    "shuffle", "mouse", "crow", "duck", "turkey", "cricket", "snap", "crack", "chop", "splinter",
    "harmonic", "loop", "beat", "song", "note", "drone", "ringing", "silence", "inside", "outside",
    "harmony", "bass", "effect", "slam", "bay", "yak", "arrow", "mantra", "camera", "recording",
    "writing", "jingle", "vibration", "steam", "fire", "boom", "tap", "coin", "zipper", "pan",
    "echo", "reverberation", "wave", "stir", "wobble", "burst",
})

# classes that describe the recording or the room, not a source: never derived (with an ontology,
# nor anything below them)
NOT_DERIVED = frozenset({
    "Sound reproduction", "Acoustic environment", "Recording", "Field recording", "Microphone",
    "Sound equipment", "Loudspeaker", "Headphones", "Sound effect", "Silence",
})

HUMAN_WORDS = frozenset({
    "man", "woman", "person", "people", "someone", "somebody", "child", "children", "kid", "boy", "girl",
    "baby", "infant", "toddler", "guy", "lady", "gentleman", "men", "women", "he", "she", "crowd", "audience",
    "singer", "speaker", "voice", "human", "player", "student", "customer", "worker", "adult", "teenager",
    "female", "male", "group", "family", "mother", "father", "friend", "announcer", "vocalist",
    "individual", "passenger", "pedestrian", "musician", "chef", "couple", "soprano", "tenor", "baritone",
    "alto", "comedian",
})

ANIMAL_WORDS = frozenset({
    "animal", "creature", "pet", "beast", "critter", "wildlife", "livestock",
})

# words that describe a human sound when a person makes it, and often something else
HUMAN_VERBS = frozenset({
    "sing", "hum", "humming", "cry", "scream", "whistle", "whistling", "chatter", "laugh", "yell",
    "shout", "squeal", "grunt", "snore", "breathe", "breath", "breathing", "whine", "moan", "groan",
    "wail", "gasp", "pant", "sniff", "sigh", "call", "talk", "screech", "murmur", "babble", "whimper",
    "snort", "voice",
})

# animal sounds often said of machines, wind or people; without an animal: these classes instead
ANIMAL_VERBS: dict[str, tuple[str, ...]] = {
    "roar": (), "growl": (), "growling": (), "howl": ("Howl (wind)",), "purr": (), "hoot": (),
    "croak": (), "snort": ("Snort",), "whimper": ("Whimper",), "coo": (), "squawk": (), "bleat": (),
    "honk": ("Vehicle horn, car horn, honking",), "chirp": ("Chirp, tweet",), "tweet": ("Chirp, tweet",),
    "trill": (), "warble": (), "caw": (), "hiss": ("Hiss",), "buzz": ("Buzz",), "yip": (), "bay": (),
    "neigh": (), "gobble": (), "cluck": (), "quack": ("Quack",), "bark": (),
}

# what an animal verb does not name once the text names an animal ("a goose honks": no car horn)
NOT_WITH_ANIMAL: dict[str, tuple[str, ...]] = {
    "honk": ("Vehicle horn, car horn, honking",),
}

CONTEXT: dict[str, list[tuple[tuple[str, ...] | None, tuple[str, ...]]]] = {
    "keyboard": [(("piano", "play", "music", "melody", "note", "chord", "tune", "song"), ("Keyboard (musical)",)),
                 (None, ("Computer keyboard", "Typing"))],
    "key": [(("piano", "music", "melody", "note", "chord"), ("Keyboard (musical)",)),
            (("type", "typing", "keyboard", "computer"), ("Computer keyboard", "Typing")),
            (None, ("Keys jangling",))],
    "play": [(("music", "melody", "tune", "song", "instrument", "note", "chord"), ("Music",)), (None, ())],
    "horn": [(("car", "vehicle", "truck", "traffic", "honk", "bus", "driver", "road"),
              ("Vehicle horn, car horn, honking",)),
             (("train",), ("Train horn",)), (("ship", "boat", "fog"), ("Foghorn",)),
             (None, ("Brass instrument",))],
    "whistle": [(("train", "locomotive"), ("Train whistle",)), (("kettle",), ("Kettle whistle",)),
                (("steam",), ("Steam whistle",)), (("referee", "blow"), ("Whistle",)),
                (None, ("Whistling",))],
    "engine": [(("train", "locomotive"), ("Train", "Engine")), (("plane", "jet", "aircraft", "airplane"), ("Aircraft engine",)),
               (("boat", "ship"), ("Motorboat, speedboat", "Engine")), (None, ("Engine",))],
    "motor": [(("boat",), ("Motorboat, speedboat", "Engine")), (None, ("Engine",))],
    "pass": [(("car", "vehicle", "traffic"), ("Car passing by",)), (None, ())],
    "song": [(("bird", "birds", "songbird"), ("Bird vocalization, bird call, bird song",)), (None, ("Music",))],
    "fire": [(("gun", "shot", "gunshot", "rifle", "pistol", "weapon", "cannon", "bullet"), ()), (None, ("Fire",))],
    "wave": [(("sea", "ocean", "beach", "water", "shore", "surf", "crash", "lake", "coast", "tide"), ("Waves, surf",)),
             (None, ())],
    "tap": [(("water", "sink", "faucet", "run", "pour", "flow", "drip"), ("Water tap, faucet",)), (None, ("Tap",))],
    # "a jet of water" is no aircraft
    "jet": [(("water", "spray", "stream", "hose", "fountain", "pool", "bath", "tub", "jacuzzi", "nozzle",
              "steam", "squirt"), ()), (None, ("Aircraft",))],
    "speaker": [(("from", "through", "over", "out", "loud", "bluetooth", "radio", "music", "play", "stereo"), ()),
                (None, ("Speech",))],
    "ring": [(("phone", "telephone", "cellphone"), ("Telephone bell ringing",)),
             (("bell", "church", "doorbell"), ("Bell",)), (None, ())],
}

NAMES_NOTHING = frozenset({
    "hot dog", "hotdog", "horse power", "horsepower", "fire hydrant", "fire extinguisher", "wind up",
    "windup", "water bottle", "rain jacket", "rain coat", "rain boot", "bird eye", "dog ear", "cat eye",
    "cat walk", "cat nap", "dog day", "bull dozer", "bee line", "rat race", "dog tired", "crow bar",
    "crowbar", "piggy bank", "frog man", "duck tape", "bird cage", "dog house", "dog bed", "cat bed",
    "dog tag", "cat litter", "dog food", "cat food", "dog bowl", "cat bowl", "bird feeder", "dog leash",
    "dog collar", "cat flap", "dog door", "pet door", "pet food", "bat mitzvah", "bird bath",
    "bell pepper",
})

_MUSIC_WORDS = (
    "music", "musical", "song", "band", "guitar", "play", "singer", "sing", "melody", "tune", "instrument",
    "drum", "bass", "piano", "harmonica", "rhythm", "beat", "chord", "concert", "genre", "style", "lyric",
    "vocal", "radio", "record", "track", "banjo", "fiddle", "jazz", "rock", "soprano", "aria", "tenor",
)
NEEDS: dict[str, tuple[str, ...]] = {
    "Blues": _MUSIC_WORDS, "Country": _MUSIC_WORDS, "Heavy metal": _MUSIC_WORDS, "Funk": _MUSIC_WORDS,
    "Dub": _MUSIC_WORDS, "Electro": _MUSIC_WORDS, "Grunge": _MUSIC_WORDS, "Disco": _MUSIC_WORDS,
    "Opera": _MUSIC_WORDS, "Ska": _MUSIC_WORDS, "Swing music": _MUSIC_WORDS, "House music": _MUSIC_WORDS,
    "Soul music": _MUSIC_WORDS, "Pop music": _MUSIC_WORDS, "Trap music": _MUSIC_WORDS,
    "Church bell": ("bell", "ring", "ringing", "chime", "toll", "peal", "bong", "ding", "dong", "clang"),
    # "a duck calls from the pond" is the bird; the tool is blown by a hunter
    "Duck call (hunting tool)": ("hunter", "hunting", "hunt", "blow", "blows", "blowing", "tool", "decoy",
                                 "caller", "lure"),
}
VETOED_BY: dict[str, tuple[str, ...]] = {
    # "rapping on the door" is knocking
    "Rapping": ("door", "window", "knuckle", "knock", "table", "wall", "desk", "glass", "wood", "wooden",
                "metal", "pipe", "pane", "surface", "finger", "radiator"),
    # "the fans cheer": supporters, not a machine
    "Mechanical fan": ("cheer", "crowd", "stadium", "applause", "applaud", "clap", "chant", "audience",
                       "concert", "supporter", "scream", "shout", "goal", "celebrate"),
    # "hammering rain", "a hammering heart"
    "Hammer": ("rain", "hail", "raindrop", "downpour", "storm", "heart", "heartbeat"),
    # "a kid plays the recorder" is music, not children at play
    "Children playing": ("recorder", "piano", "guitar", "violin", "flute", "drum", "instrument", "music",
                         "song", "tune", "trumpet", "xylophone", "melody", "keyboard", "cello", "ukulele"),
    "Cricket": ("game", "match", "bat", "ball", "wicket", "commentary", "commentator", "umpire", "stadium",
                "team", "innings", "bowler", "batsman", "sport", "player", "fielder", "batting", "bowling"),
}
