"""Sample search queries and document passages embedded once at prepare time to calibrate int8 output ranges.

Every text was written for this project (no public dataset's text, in particular nothing from BEIR/SciFact, which is
the evaluation set), so the per-dimension calibration is reproducible from this file alone.
"""

from __future__ import annotations

CALIBRATION_QUERIES: tuple[str, ...] = (
    "how long to boil an egg for a runny yolk",
    "symptoms of vitamin D deficiency in adults",
    "best time of year to visit Patagonia",
    "statute of limitations for breach of contract in California",
    "difference between a Roth IRA and a traditional IRA",
    "python list comprehension with if else",
    "why does time slow down near a black hole?",
    "how do mitochondria produce ATP",
    "main causes of the fall of the Western Roman Empire",
    "offside rule in football explained simply",
    "is the Kindle Paperwhite waterproof",
    "define opportunity cost with an example",
    "how to unclog a bathroom sink without chemicals",
    "can I take ibuprofen if I have high blood pressure",
    "sourdough starter not rising after a week",
    "do Canadians need a visa to visit Japan",
    "tenant rights when landlord keeps the security deposit",
    "how is cryptocurrency taxed when you sell it",
    "rust error cannot borrow as mutable because it is also borrowed as immutable",
    "quantum entanglement in simple terms",
    "how does CRISPR gene editing actually work",
    "who built the Great Wall of China and why",
    "how many players are on a rugby union team",
    "noise cancelling headphones under 200 dollars",
    "meaning of the word ubiquitous",
    "how to change a flat tire step by step",
    "early warning signs of type 2 diabetes",
    "vegan egg substitute for baking cakes",
    "cheapest way from Lisbon airport to the city centre",
    "what happens to your property if you die without a will",
    "compound interest formula with monthly contributions",
    "git undo last commit but keep the changes",
    "Why is the sky blue?",
    "role of the gut microbiome in the immune system",
    "what event started World War I",
    "16 week marathon training plan for beginners",
    "does the iPhone 15 support MagSafe charging",
    "what does GDP per capita measure",
    "how to remove black mold from shower grout",
    "SQL inner join vs left join difference",
    "how many days does jet lag usually last",
    "is intermittent fasting safe for teenagers",
    "convert 2 cups of flour to grams",
    "trademark vs copyright vs patent what is the difference",
    "how do index funds work for beginners",
    "docker container exits immediately after starting",
    "speed of light in a vacuum in km per second",
    "Explain how vaccines train the immune system to a ten year old",
    "what was the Marshall Plan",
    "how is a tiebreak scored in tennis",
    "warranty period for a Samsung washing machine",
    "what is an embedding in machine learning",
    "how to write a cover letter with no work experience",
    "kubernetes pod stuck in CrashLoopBackOff how to debug",
    "light dependent reactions of photosynthesis summary",
    "average registered nurse salary in Texas 2024",
    "propagate pothos cuttings in water",
    "half life of carbon 14 and how radiocarbon dating works",
    "laptop battery drains overnight when lid is closed",
    "easy cold brew coffee ratio at home",
    "Can my employer change my shift without notice?",
    "what causes inflation and who measures it",
    "javascript async await try catch best practice",
    "how do earthquakes happen at plate boundaries",
    "recommend a sci-fi novel similar to The Martian",
    "comment faire une pâte brisée sans beurre",
    "symptômes de la grippe chez l'enfant de deux ans",
    "wie beantrage ich einen neuen Reisepass in Berlin",
    "Unterschied zwischen GmbH und UG einfach erklärt",
    "mejores playas de la costa de Oaxaca para familias",
    "cómo calcular el IVA de una factura",
    "如何申请美国留学签证",
    "高血压患者可以喝咖啡吗",
    "新幹線 東京から大阪 所要時間",
    "パスタ 茹で時間 アルデンテ",
    "как выучить английский язык самостоятельно с нуля",
    "ما هي أعراض نقص الحديد عند النساء",
    "बच्चों के लिए स्वस्थ नाश्ते के विचार",
    "como declarar imposto de renda sendo autônomo",
    "ricetta tradizionale della carbonara romana senza panna",
)

CALIBRATION_DOCUMENTS: tuple[str, ...] = (
    "The Danube is the second-longest river in Europe after the Volga. It rises in the Black Forest of southwestern "
    "Germany and flows for roughly 2,850 kilometres through ten countries before reaching the Black Sea, where it "
    "forms a broad delta shared by Romania and Ukraine.",
    "To make a quick tomato sauce, warm three tablespoons of olive oil in a wide pan and soften two sliced garlic "
    "cloves without letting them brown. Add a can of crushed tomatoes, a pinch of salt and a few torn basil leaves, "
    "then simmer uncovered for about twenty minutes, stirring now and then, until the sauce has thickened.",
    "City officials said on Tuesday that the riverside cycle path will close for six weeks from early March while "
    "crews rebuild a section of the retaining wall. A signposted detour will run along Elm Street and past the old "
    "rail yard, and the council promised to avoid weekend work where possible.",
    "The TrailLite 2 tent weighs 1.4 kg and sleeps two adults. Its double-wall design pairs a ripstop nylon fly "
    "rated to 3,000 mm with two side doors and two vestibules for packs and boots. Colour-coded aluminium poles "
    "make pitching quick, even in the dark.",
    "I had the same problem with my router dropping the connection every evening. What fixed it for me was setting "
    "the 2.4 GHz band to a fixed channel instead of automatic and turning off the smart connect option. Worth "
    "trying before you buy new hardware.",
    "parse_date(value, *, fmt=None) converts a string into a datetime.date object. When fmt is omitted, ISO 8601 "
    "dates such as 2024-05-17 are accepted. A ValueError is raised if the string does not match the expected "
    "format; any time zone suffix is ignored.",
    "The Tenant shall give the Landlord not less than sixty (60) days' written notice of its intention to terminate "
    "this Agreement. Any such notice shall be delivered by registered post or by hand to the address set out in "
    "Schedule A and shall take effect on the date of receipt.",
    "Revenue for the third quarter rose 8 percent year over year to 412 million dollars, driven mainly by growth in "
    "the subscription segment. Operating margin narrowed to 11.2 percent as the company stepped up spending on "
    "research and development and absorbed higher freight costs in its hardware division.",
    "We examined the effect of screen use before bedtime on sleep onset latency in 214 university students over four "
    "weeks. Participants asked to avoid screens in the final hour before bed fell asleep on average nine minutes "
    "faster than controls. The difference was largest among students reporting high baseline stress, suggesting "
    "that pre-sleep arousal may mediate the association.",
    "Photosynthesis is the process by which plants, algae and some bacteria turn light energy into chemical energy, "
    "storing it in sugars and releasing oxygen as a by-product.",
    "Mount Kilimanjaro in Tanzania is the highest mountain in Africa. It is a dormant volcano with three cones, and "
    "most climbers reach its summit, Uhuru Peak, in five to eight days along one of several established routes.",
    "Take one tablet by mouth twice daily with food. Do not exceed the stated dose. If you miss a dose, take it as "
    "soon as you remember unless it is almost time for the next one. Consult your doctor before use if you are "
    "pregnant or breastfeeding.",
    "A binary search finds an item in a sorted list by repeatedly halving the range that could contain it. Because "
    "each comparison discards half of the remaining elements, the algorithm needs at most about log2(n) steps, "
    "which makes it far faster than a linear scan on large inputs.",
    "Bake at 180 degrees Celsius for 25 to 30 minutes, until a skewer inserted in the centre comes out clean.",
    "Newton's second law states that the net force acting on an object equals its mass multiplied by its "
    "acceleration. Doubling the force on a cart therefore doubles its acceleration, while doubling its mass halves "
    "it.",
    "The home side needed only a draw to secure the title, but a late header from their captain turned the final "
    "match of the season into a 2-1 victory. More than forty thousand fans stayed on the pitch long after the "
    "whistle to celebrate the club's first championship in nineteen years.",
    "Our return policy allows you to send back unused items within 30 days of delivery for a full refund. Items "
    "must be in their original packaging. Shipping costs for returns are covered by us if the product arrived "
    "damaged or was not what you ordered.",
    "The Treaty of Westphalia, signed in 1648, ended the Thirty Years' War in the Holy Roman Empire. Historians "
    "often describe it as a starting point for the modern idea of sovereign states that do not interfere in one "
    "another's internal affairs.",
    "Short answer: no, you do not need to restart the server after editing the config file. Send the process a "
    "SIGHUP and it will reload the settings. Check the log afterwards, because a syntax error makes it keep the "
    "old configuration silently.",
    "Insulin is a hormone produced by beta cells in the pancreas. It lowers blood glucose by helping muscle, fat "
    "and liver cells absorb sugar from the bloodstream. In type 1 diabetes the immune system destroys these beta "
    "cells, so patients must replace the hormone through injections or a pump.",
    "An exchange-traded fund is a basket of securities that trades on a stock exchange like a single share. Many "
    "ETFs track an index, which keeps their management fees low, and investors can buy or sell them at market "
    "prices throughout the trading day.",
    "Unlike a list, a tuple cannot be changed after it is created. Use tuples for fixed collections such as "
    "coordinates or database rows, and lists when you need to append, remove or reorder items.",
    "Preheat a heavy skillet over high heat until it just begins to smoke. Pat the steak dry, season it generously "
    "with salt and pepper, and sear it for three minutes on each side. Add a knob of butter, a crushed garlic clove "
    "and a sprig of thyme, then spoon the foaming butter over the meat for another minute. Let it rest for five "
    "minutes before slicing against the grain.",
    "Located in a quiet street five minutes from the old town, this family-run guesthouse offers eight bright "
    "rooms with private bathrooms, free Wi-Fi and a shared garden terrace. Breakfast with local bread and cheese "
    "is served every morning until ten.",
    "The Employee agrees that, during the term of employment and for twelve months thereafter, they shall not "
    "disclose any Confidential Information to any third party without the prior written consent of the Company, "
    "except as required by law.",
    "Red blood cells carry oxygen from the lungs to the tissues using haemoglobin, an iron-containing protein. A "
    "healthy adult produces around two million new red blood cells every second in the bone marrow, and each cell "
    "circulates for roughly 120 days before it is broken down in the spleen.",
    "Entropy is a measure of how many microscopic arrangements correspond to the same macroscopic state. The second "
    "law of thermodynamics says that the total entropy of an isolated system never decreases, which is why heat "
    "flows spontaneously from hot objects to cold ones and not the other way around.",
    "Version 3.2 adds support for streaming responses, fixes a memory leak when connections are closed early, and "
    "drops compatibility with Python 3.8. See the migration guide for details on the renamed configuration keys.",
    "Shares of the regional airline fell 6 percent in early trading after it cut its full-year passenger forecast, "
    "citing weaker demand on leisure routes and a shortage of spare engine parts.",
    "Composting turns kitchen scraps and garden waste into a dark, crumbly soil improver. Keep a mix of green "
    "material, such as vegetable peelings and grass clippings, and brown material, such as dry leaves and "
    "cardboard. Turn the heap every few weeks to let air in, and keep it about as damp as a wrung-out sponge.",
    "Plate tectonics describes the Earth's outer shell as a set of rigid plates that move slowly over the softer "
    "mantle beneath them. Where plates collide, mountains rise and deep trenches form; where they pull apart, new "
    "crust is created along mid-ocean ridges.",
    "The Model S5 cordless vacuum runs for up to 55 minutes on a single charge and weighs 2.3 kg. A washable HEPA "
    "filter captures fine dust, and the motorised brush head lifts pet hair from carpets. The battery clicks out "
    "for charging, and a full charge takes about four hours.",
    "Use the --dry-run flag to print the changes the tool would make without writing anything to disk. Combine it "
    "with --verbose to see which rule triggered each change.",
    "Depreciation spreads the cost of a long-lived asset over its useful life. Under the straight-line method, a "
    "machine bought for 50,000 dollars with a ten-year life and no salvage value is expensed at 5,000 dollars a "
    "year.",
    "In this randomised trial, 160 adults with chronic lower back pain were assigned to either twelve weeks of "
    "supervised yoga or an education booklet. At the end of the programme, the yoga group reported greater "
    "improvement in pain scores and daily function, and the benefit was partly maintained at six-month follow-up.",
    "The Silk Road was not a single road but a network of trade routes linking China with Central Asia, Persia and "
    "the Mediterranean. Merchants carried silk, spices, glass and metals along it, and religions, languages and "
    "technologies such as papermaking travelled with them.",
    "If your dog is scratching constantly, check for fleas first by combing the fur near the base of the tail. If "
    "there are none, an allergy to food or pollen is the next most likely cause, and a vet can help you run an "
    "elimination diet.",
    "A marathon covers 42.195 kilometres. The distance was fixed in 1921, based on the course used at the 1908 "
    "London Olympics, which was laid out so that the race finished in front of the royal box.",
    "Returns the number of elements in the collection. This operation runs in constant time and does not iterate "
    "over the items, even for lazily loaded collections.",
    "Antibiotics work against bacteria, not viruses, so they will not help with a cold or the flu. Taking them when "
    "they are not needed encourages resistant strains to spread, making future infections harder to treat.",
    "Mix 300 g of flour, 1 teaspoon of baking powder and a pinch of salt. In another bowl, whisk two eggs with 250 ml "
    "of milk and 40 g of melted butter, then combine both mixtures until just smooth. Cook ladlefuls in a hot "
    "buttered pan until bubbles form, flip, and cook for another minute.",
    "The Supreme Court held that the search of the defendant's phone without a warrant violated the Fourth "
    "Amendment, reasoning that modern phones hold so much personal information that searching one is unlike "
    "searching a wallet or a bag.",
    "Machine translation systems based on neural networks encode a sentence into a sequence of vectors and then "
    "decode those vectors into the target language one token at a time. Attention mechanisms let the decoder focus "
    "on the most relevant parts of the source sentence at each step.",
    "Open Settings, tap Battery, and turn on Optimised Charging. The phone will learn your daily routine and hold "
    "the charge at 80 percent until shortly before you usually unplug it, which slows battery wear.",
    "Jupiter is the largest planet in the Solar System, with a mass more than twice that of all the other planets "
    "combined. Its Great Red Spot is a storm larger than Earth that has been observed for at least 190 years.",
    "Central banks raise interest rates to cool inflation. Higher rates make borrowing more expensive, which tends "
    "to reduce spending by households and businesses and eventually slows the rise in prices. The effect usually "
    "takes a year or more to work through the economy.",
    "Tried both. The cheaper model is fine for occasional use, but the motor on mine started to smell hot after ten "
    "minutes of kneading bread dough. If you bake every week, spend the extra money.",
    "The enzyme amylase, present in saliva, begins breaking starch down into simpler sugars while food is still in "
    "the mouth. Digestion of starch continues in the small intestine, where pancreatic amylase completes the job.",
    "Researchers have reported a low-cost catalyst that splits water into hydrogen and oxygen using only abundant "
    "metals. In laboratory tests the material remained stable for more than 500 hours, though the team cautions "
    "that scaling it up for industrial electrolysers will require further work.",
    "To deploy, push a tag that starts with v, for example v1.4.0. The release workflow builds the wheels, runs the "
    "test suite on every supported platform and publishes the package only if all jobs pass.",
    "The Renaissance began in the Italian city-states during the fourteenth century and spread across Europe over "
    "the next two hundred years. Artists such as Leonardo and Michelangelo, and scholars who revived the study of "
    "classical texts, reshaped painting, architecture, science and philosophy.",
    "A chess game can end in a draw by stalemate, when the player to move has no legal moves but is not in check, "
    "and also by threefold repetition, by agreement, or under the fifty-move rule.",
    "Sunscreen should be applied generously about fifteen minutes before going outside and reapplied every two "
    "hours, or more often after swimming or sweating. Dermatologists recommend a broad-spectrum product with an SPF "
    "of at least 30.",
    "This stainless steel water bottle keeps drinks cold for 24 hours and hot for 12. The leak-proof lid has a "
    "carrying loop, and the powder-coated finish resists scratches. Holds 750 ml and fits most car cup holders.",
    "Interest on the loan accrues daily at the rate specified in Section 2 and is payable monthly in arrears. Late "
    "payments incur an additional charge of 1.5 percent per month on the overdue amount.",
    "Honeybees communicate the location of food through a waggle dance. The angle of the dance relative to vertical "
    "indicates the direction of the flowers relative to the sun, and the length of the waggle run indicates the "
    "distance.",
    "Our analysis of 12 years of satellite data shows that the extent of summer sea ice in the study region declined "
    "by about 13 percent per decade. The loss was concentrated in coastal zones, where warmer river discharge and "
    "earlier snowmelt appear to accelerate thinning.",
    "When the train is cancelled, you are entitled to a full refund or to travel on the next available service at "
    "no extra cost. Keep your ticket and ask staff at the station for a delay confirmation.",
    "Hash tables store key-value pairs in an array, using a hash function to compute the index for each key. "
    "Lookups are constant time on average, but collisions, where two keys map to the same slot, must be handled by "
    "chaining or open addressing.",
    "The Apollo 11 mission landed the first humans on the Moon in July 1969. Neil Armstrong and Buzz Aldrin spent "
    "about two and a half hours outside the lunar module, while Michael Collins orbited overhead in the command "
    "module.",
    "Dehydration in older adults is common because the sense of thirst weakens with age. Signs include dark urine, "
    "dizziness, confusion and dry mouth. Offering water regularly, and foods with a high water content such as "
    "soup and fruit, helps prevent it.",
    "The public library on Harbour Road reopened on Saturday after an eighteen-month renovation that cost 7.5 million "
    "dollars. The building now has a children's wing with a reading garden, a recording studio that residents can "
    "book for free, and study rooms that stay open until midnight during exam periods. Librarians said more than "
    "two thousand people came through the doors on the first day, and about three hundred signed up for new cards. "
    "The old card catalogue drawers were kept and turned into a display of local history, including photographs of "
    "the harbour from the 1920s and letters written by the town's first mayor.",
    "You can usually deduct the cost of a home office only if the space is used regularly and exclusively for work. "
    "A spare room that doubles as a guest bedroom generally does not qualify. Keep receipts and a simple floor plan "
    "in case the tax office asks how you calculated the percentage of your home used for business.",
    "Your regex matches too much because the star is greedy. Change .* to .*? so it stops at the first closing "
    "quote, or better, use a negated character class that excludes the quote, which is both clearer and faster.",
    "Le Mont-Saint-Michel est une commune française située sur un îlot rocheux, au large de la Normandie. Célèbre "
    "pour son abbaye médiévale et ses marées spectaculaires, il attire chaque année plusieurs millions de visiteurs.",
    "Pour réussir une vinaigrette, mélangez une cuillère de moutarde avec une cuillère de vinaigre et une pincée de "
    "sel, puis ajoutez trois cuillères d'huile en fouettant jusqu'à obtenir une émulsion.",
    "Die Photovoltaikanlage auf dem Dach des Rathauses liefert seit Juni rund ein Drittel des Strombedarfs des "
    "Gebäudes. Die Stadtverwaltung plant, bis Ende nächsten Jahres auch die Schulen der Gemeinde mit Solarmodulen "
    "auszustatten.",
    "Der Mieter ist verpflichtet, Schäden an der Mietsache unverzüglich dem Vermieter anzuzeigen. Unterlässt er "
    "die Anzeige, haftet er für den daraus entstehenden Schaden.",
    "La fotosíntesis es el proceso mediante el cual las plantas transforman la energía de la luz en energía "
    "química. Durante este proceso absorben dióxido de carbono y liberan oxígeno a la atmósfera.",
    "Este portátil ligero pesa solo 1,2 kg y ofrece hasta 14 horas de batería. Incluye una pantalla de 14 pulgadas, "
    "16 GB de memoria y un teclado retroiluminado, ideal para estudiantes y profesionales que viajan con frecuencia.",
    "长城是中国古代修建的军事防御工程，绵延数千公里，横跨多个省份。它的主要部分建于明朝，"
    "如今已成为世界文化遗产，每年吸引大量游客前来参观。",
    "如果服务器返回错误代码503，通常表示服务暂时不可用。建议稍后重试，或检查负载均衡器和后端实例的运行状态。",
    "富士山は日本で最も高い山で、標高は3776メートルです。夏の登山シーズンには多くの人が山頂を目指し、"
    "ご来光を見るために夜間に登る人もいます。",
    "この関数は、指定されたファイルを読み込み、各行を文字列のリストとして返します。ファイルが存在しない場合は例外が発生します。",
    "Озеро Байкал расположено в Восточной Сибири и является самым глубоким озером на планете. В нём содержится "
    "около двадцати процентов мировых запасов пресной поверхностной воды.",
    "Для приготовления борща отварите говядину, добавьте нарезанную свёклу, капусту, картофель и морковь. Варите "
    "до мягкости овощей и подавайте со сметаной.",
    "يعد نهر النيل من أطول الأنهار في العالم، إذ يمر عبر عدة دول في شمال شرق أفريقيا قبل أن يصب في البحر الأبيض "
    "المتوسط. وقد اعتمدت عليه الحضارات القديمة في الزراعة والنقل.",
    "योग एक प्राचीन भारतीय अभ्यास है जो शरीर, मन और श्वास को संतुलित करने में मदद करता है। नियमित अभ्यास से लचीलापन "
    "बढ़ता है और तनाव कम होता है।",
    "O contrato de trabalho poderá ser rescindido por qualquer das partes mediante aviso prévio de trinta dias, "
    "salvo nos casos de justa causa previstos na legislação vigente.",
    "Il Colosseo, costruito nel primo secolo dopo Cristo, è il più grande anfiteatro mai realizzato dall'Impero "
    "romano. Poteva ospitare decine di migliaia di spettatori che assistevano a giochi e spettacoli pubblici.",
)
