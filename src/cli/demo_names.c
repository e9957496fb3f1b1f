/* cli/demo_names.c — the demo people: PRNG, culture tables, Practitioner and Patient builders.
 * See demo_names.h for the contract. The tables are plain data; add a culture by adding arrays
 * and one line to `cultures`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/demo_names.h"

/* ---- PRNG ---- */

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

void demo_rng_seed(struct demo_rng *r, uint64_t seed)
{
	r->state = seed;
}

uint64_t demo_rng_next(struct demo_rng *r)
{
	r->state += 0x9E3779B97F4A7C15ULL;
	return mix64(r->state);
}

uint32_t demo_rng_below(struct demo_rng *r, uint32_t n)
{
	/* Multiply-shift (Lemire) without the rejection step: the bias is below 2^-32 per draw. */
	return (uint32_t)(((demo_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* ---- tables ---- */

struct list {
	const char *const *v;
	size_t n;
};
#define L(a) {a, sizeof(a) / sizeof((a)[0])}

/* postal and phone patterns: '#' = a random digit, '@' = a random upper-case letter. */
struct city {
	const char *name, *state, *postal, *country, *phone;
};

struct culture {
	const char *lang;          /* BCP 47 */
	unsigned weight;           /* share of the population */
	bool number_first;         /* "12 Main Street" vs "Hauptstraße 12" */
	struct list male, female, family_m, family_f, streets;
	const struct city *cities;
	size_t ncities;
};

/* English-speaking (US, UK, IE, AU) */
static const char *const en_male[] = {"James", "John", "Robert", "Michael", "William", "David",
	"Richard", "Joseph", "Thomas", "Christopher", "Daniel", "Matthew", "Anthony", "Mark", "Steven",
	"Andrew", "Joshua", "Kevin", "Brian", "George", "Liam", "Noah", "Ethan", "Oliver"};
static const char *const en_female[] = {"Mary", "Patricia", "Jennifer", "Linda", "Elizabeth",
	"Barbara", "Susan", "Jessica", "Sarah", "Karen", "Lisa", "Nancy", "Emily", "Ashley", "Zoë",
	"Emma", "Olivia", "Abigail", "Hannah", "Chloe", "Grace", "Siobhán", "Renée", "Charlotte"};
static const char *const en_family[] = {"Smith", "Smithson", "Johnson", "Williams", "Brown", "Jones",
	"Miller", "Davis", "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin",
	"Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King",
	"Wright", "Scott", "Hill", "Green", "Adams", "Baker", "Nelson", "Carter", "Mitchell", "Roberts",
	"Campbell", "O'Brien", "O'Connor", "McDonald", "Murphy", "Kelly", "Walsh", "Byrne", "Evans"};
static const char *const en_streets[] = {"Main Street", "Oak Avenue", "Maple Drive", "Elm Street",
	"Cedar Lane", "Washington Boulevard", "Park Road", "Lake View Drive", "High Street",
	"Church Lane", "Station Road", "Mill Road"};
static const struct city en_cities[] = {
	{"Boston", "MA", "021##", "US", "+1 617 555 01##"},
	{"Springfield", "IL", "627##", "US", "+1 217 555 01##"},
	{"Portland", "OR", "972##", "US", "+1 503 555 01##"},
	{"Austin", "TX", "787##", "US", "+1 512 555 01##"},
	{"Denver", "CO", "802##", "US", "+1 303 555 01##"},
	{"Madison", "WI", "537##", "US", "+1 608 555 01##"},
	{"Leeds", NULL, "LS1 #@@", "GB", "+44 7700 900###"},
	{"Bristol", NULL, "BS1 #@@", "GB", "+44 7700 900###"},
	{"Cork", NULL, "T12 @#@#", "IE", "+353 85 ### ####"},
	{"Melbourne", "VIC", "30##", "AU", "+61 491 570 ###"},
};

/* Spanish-speaking (ES, MX, AR) */
static const char *const es_male[] = {"José", "Juan", "Luis", "Carlos", "Javier", "Andrés",
	"Jesús", "Álvaro", "Sergio", "Raúl", "Iván", "Martín", "Alejandro", "Tomás", "Ramón"};
static const char *const es_female[] = {"María", "Lucía", "Sofía", "Carmen", "Ana", "Isabel",
	"Inés", "Mónica", "Verónica", "Ángela", "Raquel", "Elena", "Begoña", "Pilar", "Valentina"};
static const char *const es_family[] = {"García", "Rodríguez", "Martínez", "Hernández", "López",
	"González", "Pérez", "Sánchez", "Ramírez", "Torres", "Flores", "Gómez", "Díaz", "Muñoz",
	"Jiménez", "Álvarez", "Núñez", "Peña", "Ibáñez", "Castillo", "Ortega", "Rubio", "Marín"};
static const char *const es_streets[] = {"Calle Mayor", "Avenida de la Constitución", "Calle del Sol",
	"Paseo de la Reforma", "Calle de Alcalá", "Avenida Insurgentes", "Calle San Martín",
	"Avenida Corrientes"};
static const struct city es_cities[] = {
	{"Madrid", NULL, "280##", "ES", "+34 6## ### ###"},
	{"Sevilla", NULL, "410##", "ES", "+34 6## ### ###"},
	{"Valencia", NULL, "460##", "ES", "+34 6## ### ###"},
	{"Ciudad de México", "CDMX", "06###", "MX", "+52 55 #### ####"},
	{"Guadalajara", "JAL", "44###", "MX", "+52 33 #### ####"},
	{"Buenos Aires", NULL, "C1###@@@", "AR", "+54 11 #### ####"},
};

/* German-speaking (DE, AT, CH) */
static const char *const de_male[] = {"Lukas", "Jürgen", "Jörg", "Matthias", "Stefan", "Andreas",
	"Felix", "Maximilian", "Günter", "Uwe", "Tobias", "Jonas", "Björn", "Klaus"};
static const char *const de_female[] = {"Anna", "Sabine", "Ursula", "Katharina", "Lena", "Jana",
	"Anke", "Brigitte", "Sophie", "Hannelore", "Käthe", "Mia", "Lea", "Jutta"};
static const char *const de_family[] = {"Müller", "Schmidt", "Schneider", "Fischer", "Weber",
	"Meyer", "Wagner", "Becker", "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter",
	"Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann",
	"Hartmann", "Weiß", "Köhler", "Groß", "Meier"};
static const char *const de_streets[] = {"Hauptstraße", "Schulstraße", "Gartenstraße",
	"Bahnhofstraße", "Lindenweg", "Goethestraße", "Mühlenweg", "Am Markt"};
static const struct city de_cities[] = {
	{"Berlin", NULL, "10###", "DE", "+49 151 ########"},
	{"München", NULL, "80###", "DE", "+49 160 ########"},
	{"Hamburg", NULL, "20###", "DE", "+49 170 ########"},
	{"Köln", NULL, "50###", "DE", "+49 151 ########"},
	{"Wien", NULL, "1##0", "AT", "+43 664 #######"},
	{"Zürich", NULL, "80##", "CH", "+41 79 ### ## ##"},
};

/* French-speaking (FR, BE, CA-QC) */
static const char *const fr_male[] = {"François", "Jérôme", "Benoît", "Étienne", "Nicolas",
	"Pierre", "Théo", "Gaël", "Loïc", "Noël", "Julien", "Mathéo", "Rémi"};
static const char *const fr_female[] = {"Hélène", "Chloé", "Zoë", "Élodie", "Amélie", "Céline",
	"Manon", "Léa", "Camille", "Françoise", "Anaïs", "Maëlle", "Inès"};
static const char *const fr_family[] = {"Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard",
	"Petit", "Durand", "Leroy", "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garçon",
	"Bélanger", "Gagnon", "Côté", "Lévesque", "Bouchard", "Fontaine", "Chevalier"};
static const char *const fr_streets[] = {"rue de la République", "avenue Victor Hugo", "rue Pasteur",
	"boulevard Saint-Michel", "rue du Moulin", "chemin des Écoliers", "rue Sainte-Catherine"};
static const struct city fr_cities[] = {
	{"Paris", NULL, "750##", "FR", "+33 6 ## ## ## ##"},
	{"Lyon", NULL, "6900#", "FR", "+33 6 ## ## ## ##"},
	{"Marseille", NULL, "130##", "FR", "+33 7 ## ## ## ##"},
	{"Bruxelles", NULL, "10#0", "BE", "+32 470 ## ## ##"},
	{"Montréal", "QC", "H2X #@#", "CA", "+1 514 555 01##"},
	{"Québec", "QC", "G1R #@#", "CA", "+1 418 555 01##"},
};

/* Icelandic: patronymics differ by gender. */
static const char *const is_male[] = {"Ólafur", "Jón", "Sigurður", "Guðmundur", "Gunnar", "Magnús",
	"Einar", "Kristján", "Þórður", "Ari"};
static const char *const is_female[] = {"Guðrún", "Sigríður", "Kristín", "Helga", "Sólveig",
	"Freyja", "Ásta", "Þóra", "Katrín", "Jóhanna"};
static const char *const is_family_m[] = {"Ólafsson", "Jónsson", "Sigurðsson", "Guðmundsson",
	"Magnússon", "Einarsson", "Gunnarsson", "Kristjánsson"};
static const char *const is_family_f[] = {"Ólafsdóttir", "Jónsdóttir", "Sigurðardóttir",
	"Guðmundsdóttir", "Magnúsdóttir", "Einarsdóttir", "Gunnarsdóttir", "Kristjánsdóttir"};
static const char *const is_streets[] = {"Laugavegur", "Hverfisgata", "Skólavörðustígur",
	"Bankastræti", "Hafnarstræti"};
static const struct city is_cities[] = {
	{"Reykjavík", NULL, "1#1", "IS", "+354 6## ####"},
	{"Akureyri", NULL, "60#", "IS", "+354 8## ####"},
	{"Kópavogur", NULL, "20#", "IS", "+354 7## ####"},
};

/* Scandinavian (SE, NO, DK) */
static const char *const sc_male[] = {"Lars", "Anders", "Søren", "Mikael", "Erik", "Henrik", "Nils",
	"Bjørn", "Åke", "Oskar"};
static const char *const sc_female[] = {"Ingrid", "Astrid", "Åsa", "Siv", "Maja", "Karin", "Linnéa",
	"Sofie", "Mette", "Ebba"};
static const char *const sc_family[] = {"Andersson", "Johansson", "Nilsson", "Hansen", "Jensen",
	"Larsen", "Sørensen", "Bjørnstad", "Lindqvist", "Ødegård", "Karlsson", "Pedersen"};
static const char *const sc_streets[] = {"Storgatan", "Drottninggatan", "Kongens gate",
	"Nørregade", "Vestergade", "Kungsgatan"};
static const struct city sc_cities[] = {
	{"Stockholm", NULL, "1## ##", "SE", "+46 70 ### ## ##"},
	{"Göteborg", NULL, "4## ##", "SE", "+46 73 ### ## ##"},
	{"Malmö", NULL, "2## ##", "SE", "+46 76 ### ## ##"},
	{"Oslo", NULL, "0###", "NO", "+47 4## ## ###"},
	{"København", NULL, "1###", "DK", "+45 2# ## ## ##"},
	{"Aarhus", NULL, "8000", "DK", "+45 3# ## ## ##"},
};

/* Polish and Czech: feminine surname forms. */
static const char *const pl_male[] = {"Paweł", "Łukasz", "Michał", "Piotr", "Krzysztof", "Tomasz",
	"Jiří", "Tomáš", "Václav", "Jakub", "Wojciech"};
static const char *const pl_female[] = {"Małgorzata", "Agnieszka", "Katarzyna", "Joanna", "Zofia",
	"Alicja", "Jana", "Lucie", "Tereza", "Barbora", "Łucja"};
static const char *const pl_family_m[] = {"Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk",
	"Kamiński", "Lewandowski", "Zieliński", "Szymański", "Dvořák", "Novák", "Svoboda", "Černý",
	"Procházka"};
static const char *const pl_family_f[] = {"Nowak", "Kowalska", "Wiśniewska", "Wójcik", "Kowalczyk",
	"Kamińska", "Lewandowska", "Zielińska", "Szymańska", "Dvořáková", "Nováková", "Svobodová",
	"Černá", "Procházková"};
static const char *const pl_streets[] = {"ul. Marszałkowska", "ul. Długa", "ul. Floriańska",
	"Vodičkova", "Národní", "ul. Piotrkowska"};
static const struct city pl_cities[] = {
	{"Warszawa", NULL, "0#-###", "PL", "+48 5## ### ###"},
	{"Kraków", NULL, "3#-###", "PL", "+48 6## ### ###"},
	{"Łódź", NULL, "9#-###", "PL", "+48 7## ### ###"},
	{"Praha", NULL, "1## ##", "CZ", "+420 6## ### ###"},
	{"Brno", NULL, "6## ##", "CZ", "+420 7## ### ###"},
};

/* West African (NG, GH) */
static const char *const wa_male[] = {"Chinedu", "Oluwaseun", "Emeka", "Kwame", "Kofi", "Tunde",
	"Ifeanyi", "Yaw", "Babatunde", "Kwabena"};
static const char *const wa_female[] = {"Ngozi", "Adaeze", "Folake", "Amara", "Chiamaka", "Abena",
	"Ama", "Yetunde", "Efua", "Funmilayo"};
static const char *const wa_family[] = {"Okafor", "Adeyemi", "Okonkwo", "Balogun", "Eze", "Nwosu",
	"Mensah", "Boateng", "Asante", "Oyelaran", "Adebayo", "Owusu", "Obi"};
static const char *const wa_streets[] = {"Allen Avenue", "Awolowo Road", "Ring Road", "Adeola Odeku Street",
	"Oxford Street", "Herbert Macaulay Way"};
static const struct city wa_cities[] = {
	{"Lagos", "LA", "1#####", "NG", "+234 803 ### ####"},
	{"Abuja", "FC", "9#####", "NG", "+234 805 ### ####"},
	{"Enugu", "EN", "4#####", "NG", "+234 806 ### ####"},
	{"Accra", NULL, "GA-###-####", "GH", "+233 24 ### ####"},
	{"Kumasi", NULL, "AK-###-####", "GH", "+233 20 ### ####"},
};

/* South Asian (IN, GB) */
static const char *const sa_male[] = {"Arjun", "Rahul", "Vikram", "Sanjay", "Amit", "Rohan", "Aditya",
	"Imran", "Karthik", "Harpreet"};
static const char *const sa_female[] = {"Priya", "Ananya", "Deepika", "Kavya", "Aisha", "Sunita",
	"Meera", "Neha", "Lakshmi", "Pooja"};
static const char *const sa_family[] = {"Sharma", "Patel", "Singh", "Kumar", "Gupta", "Reddy", "Iyer",
	"Nair", "Khan", "Chaudhary", "Mehta", "Rao", "Bose"};
static const char *const sa_streets[] = {"MG Road", "Linking Road", "Park Street", "Brigade Road",
	"Belgrave Road", "Anna Salai"};
static const struct city sa_cities[] = {
	{"Mumbai", "MH", "4000##", "IN", "+91 98### #####"},
	{"Bengaluru", "KA", "5600##", "IN", "+91 99### #####"},
	{"Chennai", "TN", "6000##", "IN", "+91 94### #####"},
	{"Kolkata", "WB", "7000##", "IN", "+91 90### #####"},
	{"Leicester", NULL, "LE1 #@@", "GB", "+44 7700 900###"},
};

/* Chinese (pinyin) */
static const char *const zh_male[] = {"Wei", "Jun", "Hao", "Lei", "Jian", "Ming", "Yong", "Tao"};
static const char *const zh_female[] = {"Li", "Fang", "Xiuying", "Jing", "Mei", "Yan", "Xia", "Lü"};
static const char *const zh_family[] = {"Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao",
	"Wu", "Zhou", "Xu", "Sun"};
static const char *const zh_streets[] = {"Nanjing Road", "Huaihai Road", "Chang'an Avenue",
	"Zhongshan Road", "Renmin Road"};
static const struct city zh_cities[] = {
	{"Shanghai", "SH", "200###", "CN", "+86 139 #### ####"},
	{"Beijing", "BJ", "100###", "CN", "+86 138 #### ####"},
	{"Guangzhou", "GD", "510###", "CN", "+86 137 #### ####"},
};

/* Japanese (Hepburn with macrons) */
static const char *const ja_male[] = {"Haruto", "Sōta", "Yūto", "Ren", "Kenji", "Takashi", "Hiroshi",
	"Daiki"};
static const char *const ja_female[] = {"Yui", "Aoi", "Sakura", "Hina", "Yōko", "Keiko", "Yuki",
	"Mio"};
static const char *const ja_family[] = {"Satō", "Suzuki", "Takahashi", "Tanaka", "Itō", "Watanabe",
	"Yamamoto", "Nakamura", "Kobayashi", "Katō"};
static const char *const ja_streets[] = {"Chūō-dōri", "Omotesandō", "Meiji-dōri", "Midōsuji"};
static const struct city ja_cities[] = {
	{"Tōkyō", "13", "1##-####", "JP", "+81 90 #### ####"},
	{"Ōsaka", "27", "5##-####", "JP", "+81 80 #### ####"},
	{"Kyōto", "26", "6##-####", "JP", "+81 70 #### ####"},
};

/* Vietnamese */
static const char *const vi_male[] = {"Minh", "Đức", "Quang", "Tuấn", "Hùng", "Dũng", "Long", "Khoa"};
static const char *const vi_female[] = {"Linh", "Hương", "Thảo", "Ngọc", "Lan", "Trang", "Phương",
	"Mai"};
static const char *const vi_family[] = {"Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan",
	"Vũ", "Võ", "Đặng"};
static const char *const vi_streets[] = {"Đường Lê Lợi", "Phố Hàng Bạc", "Đường Nguyễn Huệ",
	"Đường Trần Hưng Đạo"};
static const struct city vi_cities[] = {
	{"Hà Nội", NULL, "100000", "VN", "+84 91 ### ## ##"},
	{"Thành phố Hồ Chí Minh", NULL, "700000", "VN", "+84 90 ### ## ##"},
	{"Đà Nẵng", NULL, "550000", "VN", "+84 93 ### ## ##"},
};

/* Arabic and Turkish */
static const char *const ar_male[] = {"Mohammed", "Ahmed", "Omar", "Youssef", "Mehmet", "Mustafa",
	"Emre", "Karim", "Hüseyin", "Khaled"};
static const char *const ar_female[] = {"Fatima", "Aisha", "Layla", "Mariam", "Zeynep", "Elif", "Ayşe",
	"Nour", "Gül", "Yasmin"};
static const char *const ar_family[] = {"Al-Sayed", "Haddad", "Nasser", "Khalil", "Mansour", "Yılmaz",
	"Kaya", "Demir", "Şahin", "Çelik", "Öztürk", "Aydın", "Saleh"};
static const char *const ar_streets[] = {"İstiklal Caddesi", "Atatürk Bulvarı", "Rainbow Street",
	"Bağdat Caddesi", "Corniche Road"};
static const struct city ar_cities[] = {
	{"İstanbul", NULL, "34###", "TR", "+90 5## ### ## ##"},
	{"Ankara", NULL, "06###", "TR", "+90 5## ### ## ##"},
	{"İzmir", NULL, "35###", "TR", "+90 5## ### ## ##"},
	{"Amman", NULL, "11###", "JO", "+962 7# ### ####"},
	{"Casablanca", NULL, "20###", "MA", "+212 6## ######"},
};

#define C(a) (a), sizeof(a) / sizeof((a)[0])
static const struct culture cultures[] = {
	{"en", 26, true, L(en_male), L(en_female), L(en_family), L(en_family), L(en_streets), C(en_cities)},
	{"es", 16, false, L(es_male), L(es_female), L(es_family), L(es_family), L(es_streets), C(es_cities)},
	{"de", 10, false, L(de_male), L(de_female), L(de_family), L(de_family), L(de_streets), C(de_cities)},
	{"fr", 8, true, L(fr_male), L(fr_female), L(fr_family), L(fr_family), L(fr_streets), C(fr_cities)},
	{"is", 3, false, L(is_male), L(is_female), L(is_family_m), L(is_family_f), L(is_streets), C(is_cities)},
	{"sv", 5, false, L(sc_male), L(sc_female), L(sc_family), L(sc_family), L(sc_streets), C(sc_cities)},
	{"pl", 6, false, L(pl_male), L(pl_female), L(pl_family_m), L(pl_family_f), L(pl_streets), C(pl_cities)},
	{"yo", 6, true, L(wa_male), L(wa_female), L(wa_family), L(wa_family), L(wa_streets), C(wa_cities)},
	{"hi", 8, true, L(sa_male), L(sa_female), L(sa_family), L(sa_family), L(sa_streets), C(sa_cities)},
	{"zh", 4, true, L(zh_male), L(zh_female), L(zh_family), L(zh_family), L(zh_streets), C(zh_cities)},
	{"ja", 3, true, L(ja_male), L(ja_female), L(ja_family), L(ja_family), L(ja_streets), C(ja_cities)},
	{"vi", 3, true, L(vi_male), L(vi_female), L(vi_family), L(vi_family), L(vi_streets), C(vi_cities)},
	{"tr", 6, false, L(ar_male), L(ar_female), L(ar_family), L(ar_family), L(ar_streets), C(ar_cities)},
};
#define NCULTURES (sizeof(cultures) / sizeof(cultures[0]))

static const char *pick(struct demo_rng *r, struct list l)
{
	return l.v[demo_rng_below(r, (uint32_t)l.n)];
}

static const struct culture *pick_culture(struct demo_rng *r)
{
	unsigned total = 0;
	for (size_t i = 0; i < NCULTURES; i++)
		total += cultures[i].weight;
	unsigned x = demo_rng_below(r, total);
	for (size_t i = 0; i < NCULTURES; i++) {
		if (x < cultures[i].weight)
			return &cultures[i];
		x -= cultures[i].weight;
	}
	return &cultures[0];
}

/* Expand a '#'/'@' pattern into out (NUL-terminated, truncated to outsz). */
static void fill_pattern(struct demo_rng *r, const char *pat, char *out, size_t outsz)
{
	size_t o = 0;
	for (const char *p = pat; *p && o + 1 < outsz; p++) {
		if (*p == '#')
			out[o++] = (char)('0' + demo_rng_below(r, 10));
		else if (*p == '@')
			out[o++] = (char)('A' + demo_rng_below(r, 26));
		else
			out[o++] = *p;
	}
	out[o] = '\0';
}

/* ---- ASCII folding ---- */

/* U+00C0..U+00FF */
static const char *const latin1_fold[64] = {
	"a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
	"d", "n", "o", "o", "o", "o", "o", "", "o", "u", "u", "u", "u", "y", "th", "ss",
	"a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
	"d", "n", "o", "o", "o", "o", "o", "", "o", "u", "u", "u", "u", "y", "th", "y",
};
/* U+0100..U+017F, one base letter each (pairs of upper/lower case). */
static const char latin_ext_a_fold[] =
	"aaaaaa" "cccccccc" "dddd" "eeeeeeeeee" "gggggggg" "hhhh" "iiiiiiiiii" "ii" "jj" "kkk"
	"llllllllll" "nnnnnnnnn" "oooooo" "oo" "rrrrrr" "ssssssss" "tttttt" "uuuuuuuuuuuu" "ww" "yyy"
	"zzzzzz" "s";
_Static_assert(sizeof(latin_ext_a_fold) == 129, "Latin Extended-A fold table must cover 128 code points");

/* Vietnamese letters in Latin Extended Additional (U+1EA0..U+1EF9): runs of one base letter. */
static char viet_fold(unsigned cp)
{
	if (cp >= 0x1EA0 && cp <= 0x1EB7)
		return 'a';
	if (cp >= 0x1EB8 && cp <= 0x1EC7)
		return 'e';
	if (cp >= 0x1EC8 && cp <= 0x1ECB)
		return 'i';
	if (cp >= 0x1ECC && cp <= 0x1EE3)
		return 'o';
	if (cp >= 0x1EE4 && cp <= 0x1EF1)
		return 'u';
	if (cp >= 0x1EF2 && cp <= 0x1EF9)
		return 'y';
	return 0;
}

/* Decode one UTF-8 sequence at s; returns its length (1 for an invalid byte, cp = 0xFFFD). */
static size_t utf8_next(const unsigned char *s, unsigned *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xE0) == 0xC0 && (s[1] & 0xC0) == 0x80) {
		*cp = ((unsigned)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
		return 2;
	}
	if ((s[0] & 0xF0) == 0xE0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {
		*cp = ((unsigned)(s[0] & 0x0F) << 12) | ((unsigned)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
		return 3;
	}
	if ((s[0] & 0xF8) == 0xF0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 &&
	    (s[3] & 0xC0) == 0x80) {
		*cp = ((unsigned)(s[0] & 0x07) << 18) | ((unsigned)(s[1] & 0x3F) << 12) |
		      ((unsigned)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
		return 4;
	}
	*cp = 0xFFFD;
	return 1;
}

size_t demo_ascii_fold(const char *in, char *out, size_t outsz)
{
	size_t o = 0;
	if (outsz == 0)
		return 0;
	const unsigned char *s = (const unsigned char *)in;
	while (s && *s) {
		unsigned cp;
		s += utf8_next(s, &cp);
		char one[2] = {0, 0};
		const char *rep = "";
		if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9')) {
			one[0] = (char)cp;
			rep = one;
		} else if (cp >= 'A' && cp <= 'Z') {
			one[0] = (char)(cp - 'A' + 'a');
			rep = one;
		} else if (cp >= 0xC0 && cp <= 0xFF) {
			rep = latin1_fold[cp - 0xC0];
		} else if (cp >= 0x100 && cp <= 0x17F) {
			one[0] = latin_ext_a_fold[cp - 0x100];
			rep = one;
		} else if (cp == 0x1A0 || cp == 0x1A1) {        /* Ơ ơ */
			rep = "o";
		} else if (cp == 0x1AF || cp == 0x1B0) {        /* Ư ư */
			rep = "u";
		} else if (cp == 0x1D5 || cp == 0x1D6 || cp == 0x1DA || cp == 0x1DC) { /* Ǖ ǖ Ǚ ǜ... */
			rep = "u";
		} else {
			one[0] = viet_fold(cp);
			rep = one;
		}
		for (; *rep && o + 1 < outsz; rep++)
			out[o++] = *rep;
	}
	out[o] = '\0';
	return o;
}

/* ---- NPI ---- */

/* Luhn check digit for the digits of `digits` (payload without check digit). */
static int luhn_check_digit(const char *digits)
{
	size_t n = strlen(digits);
	int sum = 0;
	/* Double every second digit counting from the right end of the payload (the check digit
	 * will take the rightmost place). */
	for (size_t i = 0; i < n; i++) {
		int d = digits[n - 1 - i] - '0';
		if (i % 2 == 0) {
			d *= 2;
			if (d > 9)
				d -= 9;
		}
		sum += d;
	}
	return (10 - sum % 10) % 10;
}

void demo_npi_make(uint32_t base9, char out[11])
{
	char payload[16];
	if (base9 < 100000000u || base9 > 999999999u)
		base9 = 100000000u + base9 % 900000000u;
	snprintf(payload, sizeof(payload), "80840%09u", (unsigned)base9);
	snprintf(out, 11, "%09u%d", (unsigned)base9, luhn_check_digit(payload));
}

bool demo_npi_valid(const char *npi)
{
	if (!npi || strlen(npi) != 10)
		return false;
	for (size_t i = 0; i < 10; i++)
		if (npi[i] < '0' || npi[i] > '9')
			return false;
	char payload[16];
	snprintf(payload, sizeof(payload), "80840%.9s", npi);
	return luhn_check_digit(payload) == npi[9] - '0';
}

/* ---- Practitioners ---- */

struct pract_row {
	const char *given, *family, *prefix, *gender, *qual, *qual_display, *phone;
	uint32_t npi_base;
};
static const struct pract_row practs[DEMO_PRACTITIONERS] = {
	{"Amara", "Okafor", "Dr.", "female", "MD", "Doctor of Medicine", "+1 617 555 0142", 192837465},
	{"Hélène", "Dubois", NULL, "female", "RN", "Registered Nurse", "+1 617 555 0143", 283746519},
	{"José", "Hernández", "Dr.", "male", "MD", "Doctor of Medicine", "+1 617 555 0144", 374651928},
	{"Jürgen", "Müller", "Dr.", "male", "DO", "Doctor of Osteopathy", "+1 617 555 0145", 465192837},
	{"Priya", "Sharma", "Dr.", "female", "PharmD", "Doctor of Pharmacy", "+1 617 555 0146", 519283746},
	{"Kenji", "Tanaka", NULL, "male", "MT", "Medical Technologist", "+1 617 555 0147", 128374659},
	{"Sigríður", "Jónsdóttir", NULL, "female", "NP", "Nurse Practitioner", "+1 617 555 0148", 137465192},
};

json_t *demo_practitioner_new(size_t i)
{
	if (i >= DEMO_PRACTITIONERS)
		return NULL;
	const struct pract_row *p = &practs[i];
	char npi[11], email[128], g[48], f[48];
	demo_npi_make(p->npi_base, npi);
	demo_ascii_fold(p->given, g, sizeof(g));
	demo_ascii_fold(p->family, f, sizeof(f));
	snprintf(email, sizeof(email), "%s.%s@hospital.example.org", g, f);

	json_t *name = json_pack("{s:s, s:s, s:[s]}", "use", "official", "family", p->family, "given", p->given);
	if (p->prefix)
		json_object_set_new(name, "prefix", json_pack("[s]", p->prefix));
	json_t *res = json_pack("{s:s, s:[{s:s, s:s, s:s}], s:b, s:[o], s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}], s:s,"
			 " s:[{s:{s:[{s:s, s:s, s:s}], s:s}}]}",
			 "resourceType", "Practitioner",
			 "identifier", "use", "official", "system", DEMO_NPI_SYSTEM, "value", npi,
			 "active", 1,
			 "name", name,
			 "telecom", "system", "phone", "value", p->phone, "use", "work",
			 "system", "email", "value", email, "use", "work",
			 "gender", p->gender,
			 "qualification", "code", "coding", "system",
			 "http://terminology.hl7.org/CodeSystem/v2-0360|2.7", "code", p->qual, "display",
			 p->qual_display, "text", p->qual_display);
	if (!res)
		abort();   /* json_pack fails only on a bad format or a NULL string: a table bug */
	return res;
}

/* ---- Patients ---- */

static const int days_in_month[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

json_t *demo_patient_new(uint64_t seed, uint64_t index, const char *const *gp_ids, size_t n_gp)
{
	struct demo_rng r;
	/* One independent stream per patient, so the result does not depend on build order. */
	demo_rng_seed(&r, mix64(seed ^ mix64(index + 0x632BE59BD9B4E019ULL)));

	const struct culture *c = pick_culture(&r);
	unsigned gx = demo_rng_below(&r, 1000);
	const char *gender = gx < 490 ? "male" : gx < 980 ? "female" : gx < 995 ? "other" : "unknown";
	bool fem = gx >= 490 && gx < 980 ? true : gx < 490 ? false : demo_rng_below(&r, 2) == 0;

	struct list first = fem ? c->female : c->male;
	const char *given = pick(&r, first);
	const char *middle = NULL;
	if (demo_rng_below(&r, 100) < 20) {
		middle = pick(&r, first);
		if (!strcmp(middle, given))
			middle = NULL;
	}
	const char *family = pick(&r, fem ? c->family_f : c->family_m);

	int year = 1930 + (int)demo_rng_below(&r, 2024 - 1930 + 1);
	int month = 1 + (int)demo_rng_below(&r, 12);
	int mdays = days_in_month[month - 1];
	if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
		mdays = 29;
	int day = 1 + (int)demo_rng_below(&r, (uint32_t)mdays);
	char birth[40];   /* room for any int, so the compiler can prove no truncation */
	snprintf(birth, sizeof(birth), "%04d-%02d-%02d", year, month, day);

	const struct city *city = &c->cities[demo_rng_below(&r, (uint32_t)c->ncities)];
	const char *street = pick(&r, c->streets);
	unsigned house = 1 + demo_rng_below(&r, 250);
	char line[160], postal[32], phone[48], natid[32];
	if (c->number_first)
		snprintf(line, sizeof(line), "%u %s", house, street);
	else
		snprintf(line, sizeof(line), "%s %u", street, house);
	fill_pattern(&r, city->postal, postal, sizeof(postal));
	fill_pattern(&r, city->phone, phone, sizeof(phone));
	snprintf(natid, sizeof(natid), "%s-%09u", city->country, 100000000u + demo_rng_below(&r, 900000000u));

	json_t *given_arr = json_pack("[s]", given);
	if (middle)
		json_array_append_new(given_arr, json_string(middle));
	json_t *address = json_pack("{s:s, s:s, s:[s], s:s, s:s, s:s}", "use", "home", "type", "physical",
				    "line", line, "city", city->name, "postalCode", postal, "country",
				    city->country);
	if (city->state)
		json_object_set_new(address, "state", json_string(city->state));

	json_t *telecom = json_pack("[{s:s, s:s, s:s, s:i}]", "system", "phone", "value", phone, "use",
				    demo_rng_below(&r, 4) == 0 ? "home" : "mobile", "rank", 1);
	if (demo_rng_below(&r, 100) < 70) {
		static const char *const domains[] = {"example.org", "example.com", "example.net"};
		char g[48], f[48], email[160];
		demo_ascii_fold(given, g, sizeof(g));
		demo_ascii_fold(family, f, sizeof(f));
		snprintf(email, sizeof(email), "%s.%s%u@%s", g[0] ? g : "patient", f[0] ? f : "demo",
			 (unsigned)(index % 1000), domains[demo_rng_below(&r, 3)]);
		json_array_append_new(telecom, json_pack("{s:s, s:s, s:s}", "system", "email", "value",
							 email, "use", "home"));
	}

	json_t *p = json_pack("{s:s, s:[{s:s, s:{s:[{s:s, s:s, s:s}], s:s}, s:s, s:s}], s:b,"
			      " s:[{s:s, s:s, s:o}], s:o, s:s, s:s, s:[o],"
			      " s:[{s:{s:[{s:s, s:s}]}, s:b}]}",
			      "resourceType", "Patient",
			      "identifier", "use", "official", "type", "coding", "system",
			      "http://terminology.hl7.org/CodeSystem/v2-0203", "code", "NI", "display",
			      "National unique individual identifier", "text", "National ID", "system",
			      DEMO_NATIONAL_ID_SYSTEM, "value", natid,
			      "active", 1,
			      "name", "use", "official", "family", family, "given", given_arr,
			      "telecom", telecom,
			      "gender", gender,
			      "birthDate", birth,
			      "address", address,
			      "communication", "language", "coding", "system", "urn:ietf:bcp:47", "code",
			      c->lang, "preferred", 1);
	if (gp_ids && n_gp > 0) {
		char ref[96];
		snprintf(ref, sizeof(ref), "Practitioner/%s", gp_ids[demo_rng_below(&r, (uint32_t)n_gp)]);
		json_object_set_new(p, "generalPractitioner", json_pack("[{s:s}]", "reference", ref));
	}
	/* json_pack fails only on a bad format or a NULL string: a bug in the tables, not input. */
	if (!p)
		abort();
	return p;
}
