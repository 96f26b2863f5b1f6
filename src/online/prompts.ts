// Prompt-only data for the on-policy methods (TRL's prompt-only shape): a `prompt` column holding a string (standard)
// or a list of chat messages (conversational), in JSONL, JSON or Parquet files or a folder of them. Preference
// datasets work too: their chosen/rejected columns are ignored. Each prompt is tokenized as the trainer tokenizes a
// prompt: standard ones get the BOS once, conversational ones are rendered with the chat template and
// add_generation_prompt. Not here: sampling (sample.ts) or judging (judges.ts).
import { PreferenceDataError, readPreferenceRows } from '../data/load.js';
import { promptPrefixIds } from '../data/tokenize.js';
import type { ChatMessage } from '../io/chat-template.js';
import type { Tokenizer } from '../io/tokenizer.js';

export interface PromptItem {
  /** Position in the input (files in name order, rows in file order), 0-based. */
  index: number;
  /** file:line or file#row. */
  source: string;
  /** What a judge reads: the prompt string, or the messages as "role: content" lines. */
  text: string;
  /** The messages of a conversational prompt, else null. */
  messages: ChatMessage[] | null;
  /** The ids the policy is fed (BOS or chat template included), after left truncation to maxPromptLength. */
  ids: number[];
}

export interface LoadPromptsOptions {
  /** Keep at most this many prompt tokens (the last ones, TRL's keep_end); null keeps all. */
  maxPromptLength?: number | null;
  /** Read at most this many prompts (the first ones); null reads all. */
  limit?: number | null;
}

/** The messages as plain text for judges: one "role: content" line per message. */
export function messagesText(messages: readonly ChatMessage[]): string {
  return messages.map((m) => `${m.role}: ${typeof m.content === 'string' ? m.content : JSON.stringify(m.content)}`).join('\n');
}

function isMessageList(value: unknown): value is ChatMessage[] {
  return Array.isArray(value) && value.every((m) => typeof m === 'object' && m !== null && typeof (m as { role?: unknown }).role === 'string' && (m as { content?: unknown }).content !== undefined);
}

/** Reads and tokenizes every prompt; an error names the record, its location and the fix. */
export async function loadPrompts(path: string, tokenizer: Tokenizer, opts: LoadPromptsOptions = {}): Promise<PromptItem[]> {
  const { rows } = await readPreferenceRows(path);
  const limit = opts.limit ?? null;
  const out: PromptItem[] = [];
  for (const row of limit === null ? rows : rows.slice(0, limit)) {
    const prompt = row.fields.prompt;
    let item: PromptItem;
    if (typeof prompt === 'string') {
      if (prompt.length === 0) throw new PreferenceDataError(row.index, row.source, "the 'prompt' is an empty string; give every record a prompt to continue");
      const prefix = promptPrefixIds(tokenizer);
      let ids = tokenizer.encode(prompt, { addSpecialTokens: false });
      if (!prefix.every((id, i) => ids[i] === id)) ids = [...prefix, ...ids];
      item = { index: row.index, source: row.source, text: prompt, messages: null, ids };
    } else if (isMessageList(prompt)) {
      if (tokenizer.chatTemplate === null) {
        throw new PreferenceDataError(row.index, row.source, `the prompt is a list of messages but ${tokenizer.source} has no chat template; use a model with one, or give the prompt as a string`);
      }
      let rendered: string;
      try {
        rendered = tokenizer.applyChatTemplate(prompt, { addGenerationPrompt: true });
      } catch (e) {
        throw new PreferenceDataError(row.index, row.source, `the chat template failed to render the prompt: ${e instanceof Error ? e.message : String(e)}`);
      }
      item = { index: row.index, source: row.source, text: messagesText(prompt), messages: prompt, ids: tokenizer.encode(rendered, { addSpecialTokens: false }) };
    } else {
      throw new PreferenceDataError(row.index, row.source,
        `no usable 'prompt' column (found ${prompt === undefined ? 'none' : typeof prompt}); prompt-only data needs "prompt": "text" or "prompt": [{"role": "user", "content": "…"}]`);
    }
    const max = opts.maxPromptLength ?? null;
    if (max !== null && item.ids.length > max) item.ids = item.ids.slice(item.ids.length - max);
    if (item.ids.length === 0) throw new PreferenceDataError(row.index, row.source, 'the prompt tokenizes to no tokens; give it some text');
    out.push(item);
  }
  if (out.length === 0) throw new Error(`${path}: no prompts; prompt-only data needs at least one record with a 'prompt'`);
  return out;
}
