// The demo's text world: a seeded template grammar of short, lower-case film reviews (an opening sentence, then
// positive, negative, mixed or neutral remarks), the review openings used as prompts, and the grammar's word list for
// the tokenizer. Every string here is written for dpo-ts; nothing is copied from a dataset.
// Not here: the tokenizer file (tokenizer-build.ts) or the sentiment scores (reward.ts).
import { Rng } from '../engine/random.js';

// ------------------------------------------------------------------------------------------------ the grammar
const viewers = ['i', 'we', 'my sister and i', 'my friends and i', 'my dad and i', 'the whole family', 'my wife and i', 'our book club'];
const watched = ['watched', 'saw', 'finally caught', 'went to see', 'rented', 'streamed', 'sat through'];
const films = [
  'this film', 'this movie', 'the new caper', 'the new thriller', 'this documentary', 'this drama', 'the sequel',
  'this western', 'the remake', 'this animated film', 'this period piece', 'the horror film', 'this musical', 'the heist film',
  'this mystery', 'the space epic',
];
const occasions = [
  'last night', 'on friday', 'at the cinema', 'on a long flight', 'this weekend', 'at home', 'after work',
  'with popcorn', 'on a quiet sunday', 'at a late show', 'at the festival', 'on tuesday',
];
const aspects = [
  'acting', 'story', 'plot', 'script', 'music', 'soundtrack', 'ending', 'cast', 'dialogue', 'pacing', 'camera work',
  'direction', 'lead actor', 'villain', 'opening scene', 'final act', 'editing', 'score', 'lighting',
];
const pluralAspects = ['special effects', 'costumes', 'songs', 'gags', 'chase scenes', 'characters', 'sets', 'actors'];
// The AFINN score of each group is in the comment after it: the grammar spans intensities, so a policy can gain by
// choosing stronger words.
const positiveAdjectives = [
  'superb', /* 5 */ 'wonderful', 'brilliant', 'amazing', 'fantastic', 'stunning', /* 4 */ 'great', 'good', 'excellent',
  'beautiful', 'lovely', 'charming', 'perfect', 'delightful', 'impressive', /* 3 */ 'clever', 'strong', 'solid',
  'entertaining', 'hilarious', /* 2 */ 'fresh', 'memorable', /* 1 */
];
const negativeAdjectives = [
  'terrible', 'awful', 'boring', 'horrible', 'dreadful', 'ridiculous', 'bad', /* -3 */ 'dull', 'poor', 'weak',
  'disappointing', 'painful', 'confusing', 'pointless', 'annoying', 'lame', 'stupid', /* -2 */ 'silly', 'forgettable', 'lazy', /* -1 */
];
const intensifiers = ['really', 'very', 'truly', 'quite', 'so'];
const nouns = ['film', 'movie', 'story', 'ride', 'experience', 'evening', 'watch'];
const performers = ['lead actor', 'young star', 'second lead', 'villain', 'old actor', 'narrator'];
const roles = ['teacher', 'detective', 'farmer', 'pilot', 'doctor', 'soldier', 'singer', 'robot', 'nurse', 'lawyer'];
const places = ['a small town', 'a large city', 'the desert', 'a space station', 'an old house', 'paris', 'a school', 'the mountains'];
const numbers = ['two', 'three', 'four', 'five', 'six'];
const lowMarks = ['one', 'two', 'three', 'four'];
const middleMarks = ['four', 'five', 'six', 'seven'];
const highMarks = ['seven', 'eight', 'nine', 'ten'];

type Slots = Record<string, readonly string[]>;
const slots: Slots = {
  aspect: aspects, aspects: pluralAspects, pos: positiveAdjectives, neg: negativeAdjectives, very: intensifiers,
  noun: nouns, performer: performers, role: roles, place: places, number: numbers, low: lowMarks, mid: middleMarks, high: highMarks,
};

// Sentence templates by the sentiment they carry; {slot} is filled from `slots`.
const positiveSentences = [
  'the {aspect} was {pos}.', 'the {aspect} was {very} {pos}.', 'the {aspects} were {pos}.', 'it is a {pos} {noun}.',
  'what a {pos} {noun}!', 'the {performer} gave a {pos} performance.', 'i loved every minute of it.',
  'i would recommend it to anyone.', 'we laughed a lot and had fun.', 'the {aspect} was not bad at all.',
  'i enjoyed the {aspects}.', 'a {pos} {noun} with {pos} {aspects}.',
];
const negativeSentences = [
  'the {aspect} was {neg}.', 'the {aspect} was {very} {neg}.', 'the {aspects} were {neg}.', 'it is a {neg} {noun}.',
  'what a waste of time!', 'the {performer} gave a {neg} performance.', 'i hated every minute of it.',
  'i would not recommend it.', 'the {aspect} was not {pos}.', 'we left early.', 'i fell asleep halfway through.',
  'a {neg} {noun} with {neg} {aspects}.',
];
const neutralSentences = [
  'it runs about {number} hours.', 'the story is set in {place}.', 'the {performer} plays a {role}.',
  'there is a {role} in it.', 'it was shot in {place}.', 'the film is in black and white.',
  'it is based on a book about a {role}.', 'the {aspect} reminded me of an old film.', 'we paid {number} dollars.',
];
const mixedSentences = [
  'the {aspect} was {pos}, but the {aspect} was {neg}.', 'the {aspects} were {neg}, but the {aspect} was {pos}.',
  'a {pos} {aspect} and a {neg} {aspect}.',
];
const closings: Record<Polarity, readonly string[]> = {
  positive: ['{high} out of ten.', 'see it!', 'i will watch it again.', 'highly recommended.'],
  negative: ['{low} out of ten.', 'skip it.', 'never again.', 'keep your money.'],
  neutral: ['{mid} out of ten.', 'that is all.', 'make up your own mind.'],
  mixed: ['{mid} out of ten.', 'maybe give it a look.', 'make up your own mind.'],
};

export type Polarity = 'positive' | 'negative' | 'neutral' | 'mixed';
/** How often each kind of review occurs in the corpus (cumulative draw in this order). */
export const polarityShares: Readonly<Record<Polarity, number>> = { positive: 0.35, negative: 0.35, mixed: 0.15, neutral: 0.15 };

// ------------------------------------------------------------------------------------------------ generation
const pick = <T>(list: readonly T[], rng: Rng): T => list[rng.int(list.length)];

/** Fills every {slot} of a template, then writes "an" before a vowel. */
function fill(template: string, rng: Rng): string {
  const text = template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const options = slots[name];
    if (options === undefined) throw new Error(`corpus: template "${template}" names an unknown slot {${name}}`);
    return pick(options, rng);
  });
  return text.replace(/\ba (?=[aeiou])/g, 'an ');
}

/** Every opening sentence "who watched what when.", in a fixed order (the prompt pool). */
export function allOpenings(): string[] {
  const out: string[] = [];
  for (const who of viewers) for (const saw of watched) for (const film of films) for (const when of occasions) out.push(`${who} ${saw} ${film} ${when}.`);
  return out;
}

function drawPolarity(rng: Rng): Polarity {
  let u = rng.uniform();
  for (const [p, share] of Object.entries(polarityShares) as [Polarity, number][]) {
    if (u < share) return p;
    u -= share;
  }
  return 'neutral';
}

/** The body of a review of one polarity: two or three remarks, sometimes a neutral aside, sometimes a closing. */
function reviewBody(polarity: Polarity, rng: Rng): string {
  const remarks = polarity === 'positive' ? positiveSentences : polarity === 'negative' ? negativeSentences : polarity === 'neutral' ? neutralSentences : mixedSentences;
  const parts: string[] = [];
  const count = 2 + rng.int(2);
  for (let i = 0; i < count; i++) {
    // Mixed reviews hold one mixed remark among the others; any review may have a neutral aside.
    const pool = polarity === 'mixed' ? (i === 0 ? mixedSentences : rng.uniform() < 0.5 ? positiveSentences : negativeSentences) : rng.uniform() < 0.2 ? neutralSentences : remarks;
    parts.push(fill(pick(pool, rng), rng));
  }
  if (rng.uniform() < 0.5) parts.push(fill(pick(closings[polarity], rng), rng));
  return parts.join(' ');
}

export interface Review {
  opening: string;
  body: string;
  polarity: Polarity;
}

/** `count` reviews drawn from the grammar with Rng(seed): the same seed gives the same reviews. */
export function generateReviews(count: number, seed: number): Review[] {
  const rng = new Rng(seed);
  const openings = allOpenings();
  return Array.from({ length: count }, () => {
    const opening = pick(openings, rng);
    const polarity = drawPolarity(rng);
    return { opening, body: reviewBody(polarity, rng), polarity };
  });
}

/** A review as one line of text: the opening, then the body. */
export const reviewText = (r: Review): string => `${r.opening} ${r.body}`;

/**
 * The prompt openings of a run, split without overlap: `eval` (held out from every training pair) and `train`, both
 * drawn by a seeded shuffle of allOpenings().
 */
export function splitOpenings(trainCount: number, evalCount: number, seed: number): { train: string[]; eval: string[] } {
  const all = allOpenings();
  if (trainCount + evalCount > all.length) throw new RangeError(`splitOpenings: ${trainCount} + ${evalCount} openings asked, the grammar has ${all.length}`);
  const rng = new Rng(seed);
  for (let i = all.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [all[i], all[j]] = [all[j], all[i]];
  }
  return { eval: all.slice(0, evalCount), train: all.slice(evalCount, evalCount + trainCount) };
}

/** Splits text into the tokenizer's pieces: runs of letters/digits, or of punctuation (HF's Whitespace rule). */
export function wordPieces(text: string): string[] {
  return text.match(/\w+|[^\w\s]+/g) ?? [];
}

/** Every word and punctuation mark the grammar can produce, sorted: the tokenizer's vocabulary. */
export function grammarVocabulary(): string[] {
  const strings = [
   ...viewers,...watched,...films,...occasions,...Object.values(slots).flat(),...positiveSentences,...negativeSentences,
   ...neutralSentences,...mixedSentences,...Object.values(closings).flat(), 'an',
  ];
  const words = new Set<string>();
  for (const s of strings) for (const w of wordPieces(s.replace(/\{\w+\}/g, ' '))) words.add(w);
  return [...words].sort();
}
