// Types for the `sentiment` package (AFINN-165 word scores with negation handling); it ships none. Only what
// src/demo/reward.ts calls is declared.
declare module 'sentiment' {
  interface AnalysisResult {
    /** Σ of the AFINN scores of the words found (a negated word counts with the opposite sign). */
    score: number;
    /** score / number of words. */
    comparative: number;
    tokens: string[];
    words: string[];
    positive: string[];
    negative: string[];
  }
  class Sentiment {
    analyze(phrase: string, options?: { extras?: Record<string, number> }): AnalysisResult;
  }
  export = Sentiment;
}
