// The demo's ground-truth reward: the AFINN-165 sentiment score of the `sentiment` package, which the models never
// see during training except through the pair labels. The reward of a completion is the sentiment it adds to its
// review: score(opening + completion) − score(opening), so a negation across the boundary still counts.
import Sentiment from 'sentiment';

const analyzer = new Sentiment();

/** AFINN score of a text: Σ word scores, negated words flipped (e.g. "not good" scores −3). */
export function afinnScore(text: string): number {
  return analyzer.analyze(text).score;
}

/** The sentiment a completion adds to its prompt. */
export function completionReward(prompt: string, completion: string): number {
  return afinnScore(`${prompt} ${completion}`) - afinnScore(prompt);
}

/** AFINN score of one word on its own (0 for words the lexicon does not list). */
export function wordScore(word: string): number {
  return afinnScore(word.toLowerCase());
}
