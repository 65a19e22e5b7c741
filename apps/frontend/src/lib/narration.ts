// The AI's running commentary, Quick, Draw! style: "I see a 1… or a 7… I know, it's a 7!"

/** "a 7", "an 8". */
export function withArticle(digit: number): string {
  return `${digit === 8 ? "an" : "a"} ${digit}`;
}

export interface NarrationInput {
  /** Top guesses so far in this drawing, oldest first. */
  guesses: readonly number[];
  /** The current top guess's probability. */
  confidence: number;
  /** From this confidence on the AI is sure. */
  sureAt: number;
}

/** The distinct guesses in the order the AI first said them, the current one last. */
export function guessTrail(guesses: readonly number[], keep = 3): number[] {
  const trail: number[] = [];
  for (const g of guesses) {
    const i = trail.indexOf(g);
    if (i >= 0) trail.splice(i, 1);
    trail.push(g);
  }
  return trail.slice(-keep);
}

export function narrate({ guesses, confidence, sureAt }: NarrationInput): string {
  const trail = guessTrail(guesses);
  const current = trail[trail.length - 1];
  if (current === undefined) return "Go on, draw something…";
  const earlier = trail.slice(0, -1);
  if (confidence >= sureAt) {
    const musing = earlier.length ? `I see ${earlier.map(withArticle).join("… or ")}… ` : "";
    return `${musing}I know, it's ${withArticle(current)}!`;
  }
  const parts = trail.map(withArticle);
  const hedge = confidence < 0.4 ? "Hmm… maybe" : "I see";
  return `${hedge} ${parts.join("… or ")}…`;
}
