// Chat templates: render a conversation to one prompt string with a model's Jinja template (@huggingface/jinja),
// passing the variables HF's apply_chat_template passes (messages, tools, documents, add_generation_prompt, special
// tokens, extra kwargs) and raise_exception. It does not tokenize: Tokenizer.applyChatTemplate (tokenizer.ts) feeds
// its own template and special tokens here, and the data layer tokenizes the result.
import { Template } from '@huggingface/jinja';

/** One part of a multi-part message, e.g. {type: 'text', text: '…'}; passed to the template untouched. */
export interface ChatContentPart {
  type: string;
  [key: string]: unknown;
}

/** A message in TRL's conversational format. Extra keys (tool_calls, name, …) reach the template too. */
export interface ChatMessage {
  role: string;
  content: string | readonly ChatContentPart[] | null;
  [key: string]: unknown;
}

export interface ChatTemplateOptions {
  /** Append the header that starts an assistant turn (HF's add_generation_prompt). Default false. */
  addGenerationPrompt?: boolean;
  /** Tool definitions as JSON schemas ({type: 'function', function: {name, description, parameters}}). */
  tools?: readonly Record<string, unknown>[] | null;
  /** Retrieval documents for RAG templates ({title, text} objects). */
  documents?: readonly Record<string, unknown>[] | null;
  bosToken?: string | null;
  eosToken?: string | null;
  /** More template variables (other special tokens, enable_thinking, …). May not reuse the names above. */
  extra?: Record<string, unknown>;
}

/** Templates longer than this are refused: they come from downloaded files and are parsed eagerly. */
export const MAX_TEMPLATE_CHARS = 1 << 20;

// The variables this module sets itself, and the library's global raise_exception(message), which throws
// Error(message); `extra` may not shadow them (HF's Python raises on the same clash).
const RESERVED = ['messages', 'tools', 'documents', 'add_generation_prompt', 'raise_exception', 'bos_token', 'eos_token'];

/** A parsed chat template; parse once, render per example. */
export class ChatTemplate {
  readonly source: string;
  private readonly parsed: Template;

  /** @param origin where the template came from, for error messages (a file path or 'chat template'). */
  constructor(source: string, readonly origin = 'chat template') {
    if (typeof source !== 'string') throw new TypeError(`${origin}: expected the template as a string, got ${typeof source}`);
    if (source.length > MAX_TEMPLATE_CHARS) {
      throw new Error(
        `${origin} is ${source.length} characters, over the ${MAX_TEMPLATE_CHARS}-character limit for chat templates; ` +
          'a real template is a few KB, so check that the right file or field was given',
      );
    }
    this.source = source;
    try {
      this.parsed = new Template(source);
    } catch (err) {
      throw new Error(`${origin} could not be parsed as Jinja: ${messageOf(err)}`);
    }
  }

  render(messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): string {
    checkMessages(messages, this.origin);
    const extra = opts.extra ?? {};
    for (const key of Object.keys(extra)) {
      if (RESERVED.includes(key)) {
        throw new Error(`${this.origin}: extra variable '${key}' would replace a built-in template variable; pass it through its own option`);
      }
    }
    const variables: Record<string, unknown> = {
      ...extra,
      messages,
      tools: opts.tools ?? null,
      documents: opts.documents ?? null,
      add_generation_prompt: opts.addGenerationPrompt ?? false,
      // Unset tokens stay undefined, as in HF (special_tokens_map omits them), and render as ''.
      bos_token: opts.bosToken ?? undefined,
      eos_token: opts.eosToken ?? undefined,
    };
    try {
      return this.parsed.render(variables);
    } catch (err) {
      // A template's raise_exception('...') lands here too, its message intact.
      throw new Error(`${this.origin} failed to render (${messages.length} messages): ${messageOf(err)}`);
    }
  }
}

/** Renders `messages` with a template given as source text (parsed on every call) or as a parsed ChatTemplate. */
export function applyChatTemplate(
  template: string | ChatTemplate,
  messages: readonly ChatMessage[],
  opts: ChatTemplateOptions = {},
): string {
  const parsed = typeof template === 'string' ? new ChatTemplate(template) : template;
  return parsed.render(messages, opts);
}

// Catches the shape errors that would otherwise surface as an opaque Jinja error deep inside the template.
function checkMessages(messages: readonly ChatMessage[], origin: string): void {
  if (!Array.isArray(messages)) throw new TypeError(`${origin}: messages must be an array of {role, content}, got ${typeof messages}`);
  messages.forEach((message, i) => {
    if (message === null || typeof message !== 'object' || typeof message.role !== 'string') {
      throw new TypeError(`${origin}: message ${i} must be an object with a string 'role', got ${JSON.stringify(message)}`);
    }
    const content = message.content;
    if (!(content === null || content === undefined || typeof content === 'string' || Array.isArray(content))) {
      throw new TypeError(
        `${origin}: message ${i} (${message.role}) has content of type ${typeof content}; expected a string or a list of parts`,
      );
    }
  });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
