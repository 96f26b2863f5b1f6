// Chat templates rendered against exact strings: ChatML (Qwen-style), Llama 3's header format, a template that calls
// raise_exception, one with tools, and list-of-parts content. The templates are written here from the documented
// formats, not copied from model repos. Then the Tokenizer convenience on the committed fixtures.
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ChatTemplate, MAX_TEMPLATE_CHARS, applyChatTemplate, type ChatMessage } from '../src/io/chat-template.js';
import { loadTokenizer } from '../src/io/tokenizer.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'tokenizer');

// ChatML as Qwen2 uses it: a default system turn when the conversation has none.
const CHATML = `{%- if messages[0]['role'] != 'system' %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}
{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}`;

// Llama 3: BOS once, then a header, the trimmed content and <|eot_id|> per message.
const LLAMA3 = `{%- for message in messages %}
{%- set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' %}
{%- if loop.index0 == 0 %}{%- set content = bos_token + content %}{%- endif %}
{{- content }}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}`;

// Mistral-style role check: user and assistant must alternate, starting with user.
const ALTERNATING = `{%- for message in messages %}
{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{%- endif %}
{%- if message['role'] == 'user' %}{{- '[INST] ' + message['content'] + ' [/INST]' }}{%- else %}{{- message['content'] + eos_token }}{%- endif %}
{%- endfor %}`;

// Tools listed as JSON in the system turn, in the style of Qwen2.5's tool template.
const WITH_TOOLS = `{%- if tools %}{{- '<|im_start|>system\\n# Tools\\n' }}{%- for tool in tools %}{{- tool | tojson + '\\n' }}{%- endfor %}{{- '<|im_end|>\\n' }}{%- endif %}
{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endfor %}`;

const conversation: ChatMessage[] = [
  { role: 'user', content: 'What is DPO?' },
  { role: 'assistant', content: 'Direct Preference Optimization.' },
  { role: 'user', content: 'Thanks!' },
];

describe('rendering documented chat formats', () => {
  test('ChatML adds a default system turn, and the generation prompt opens an assistant turn', () => {
    assert.equal(
      applyChatTemplate(CHATML, conversation, { addGenerationPrompt: true }),
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' +
        '<|im_start|>user\nWhat is DPO?<|im_end|>\n' +
        '<|im_start|>assistant\nDirect Preference Optimization.<|im_end|>\n' +
        '<|im_start|>user\nThanks!<|im_end|>\n' +
        '<|im_start|>assistant\n',
    );
    const withSystem = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }];
    assert.equal(applyChatTemplate(CHATML, withSystem), '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n');
  });

  test('Llama 3 puts BOS first, trims content and ends each turn with <|eot_id|>', () => {
    const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: '  Hello there \n' }];
    assert.equal(
      applyChatTemplate(LLAMA3, messages, { addGenerationPrompt: true, bosToken: '<|begin_of_text|>' }),
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    assert.equal(applyChatTemplate('{{ bos_token }}Hi', []), 'Hi', 'an unset bos_token prints as nothing, as in Jinja');
    assert.throws(
      () => applyChatTemplate(LLAMA3, [{ role: 'user', content: 'Hi' }]),
      /failed to render \(1 messages\): Cannot perform operation \+ on undefined/,
      'but adding to it fails, as Python Jinja raises UndefinedError',
    );
  });

  test('raise_exception in a template becomes an error saying the template failed and why', () => {
    assert.equal(applyChatTemplate(ALTERNATING, conversation.slice(0, 2), { eosToken: '</s>' }), '[INST] What is DPO? [/INST]Direct Preference Optimization.</s>');
    const twoUsers = [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }];
    assert.throws(
      () => applyChatTemplate(ALTERNATING, twoUsers),
      /chat template failed to render \(2 messages\): Conversation roles must alternate user\/assistant/,
    );
  });

  test('tools are passed as JSON schemas and rendered with tojson', () => {
    const tools = [{
      type: 'function',
      function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
    }];
    const messages = [{ role: 'user', content: 'Weather in Paris?' }];
    assert.equal(
      applyChatTemplate(WITH_TOOLS, messages, { tools }),
      '<|im_start|>system\n# Tools\n' +
        '{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", "parameters": ' +
        '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}\n<|im_end|>\n' +
        '<|im_start|>user\nWeather in Paris?<|im_end|>\n',
    );
    assert.equal(applyChatTemplate(WITH_TOOLS, messages), '<|im_start|>user\nWeather in Paris?<|im_end|>\n', 'no tools: none');
  });

  test('list-of-parts content and extra variables reach the template unchanged', () => {
    const template = `{%- for m in messages %}{%- if m.content is string %}{{ m.content }}{%- else %}{%- for part in m.content %}{%- if part.type == 'text' %}{{ part.text }}{%- else %}<{{ part.type }}>{%- endif %}{%- endfor %}{%- endif %}{%- endfor %}{{ '/think' if enable_thinking else '' }}`;
    const messages: ChatMessage[] = [{ role: 'user', content: [{ type: 'text', text: 'See ' }, { type: 'image' }, { type: 'text', text: ' here' }] }];
    assert.equal(applyChatTemplate(template, messages, { extra: { enable_thinking: true } }), 'See <image> here/think');
  });
});

describe('chat template errors', () => {
  test('parse errors, oversized templates and bad messages are reported clearly', () => {
    assert.throws(() => new ChatTemplate('{% for m in messages %}', 'my.jinja'), /my\.jinja could not be parsed as Jinja/);
    assert.throws(() => new ChatTemplate('x'.repeat(MAX_TEMPLATE_CHARS + 1)), /over the 1048576-character limit/);
    assert.throws(() => applyChatTemplate(CHATML, JSON.parse('[{"content": "no role"}]') as ChatMessage[]), /message 0 must be an object with a string 'role'/);
    assert.throws(() => applyChatTemplate(CHATML, conversation, { extra: { messages: [] } }), /extra variable 'messages'/);
  });
});

describe('Tokenizer.applyChatTemplate on the fixtures', () => {
  test('ChatML fixture: its template, rendered and tokenized to hand-checked ids', () => {
    const tokenizer = loadTokenizer(join(FIXTURES, 'chatml'));
    assert.ok(tokenizer !== null);
    const prompt = tokenizer.applyChatTemplate([{ role: 'user', content: 'the answer' }], { addGenerationPrompt: true });
    assert.equal(prompt, '<|im_start|>user\nthe answer<|im_end|>\n<|im_start|>assistant\n');
    // "assistant": s+s, i+s… are not merges except Ġi+s (needs a space), so only the bytes a s s i s t a n t.
    assert.deepEqual(tokenizer.encode(prompt), [305, 117, 115, 259, 10, 257, 268, 306, 10, 305, 97, 115, 115, 105, 115, 116, 97, 110, 116, 10]);
  });

  test('Llama-style fixture: the rendered prompt already holds BOS, so encode it without special tokens', () => {
    const tokenizer = loadTokenizer(join(FIXTURES, 'llama-style'));
    assert.ok(tokenizer !== null);
    const prompt = tokenizer.applyChatTemplate([{ role: 'user', content: 'the answer' }], { addGenerationPrompt: true });
    assert.equal(prompt, '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nthe answer<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
    const bos = tokenizer.bosTokenId;
    assert.equal(tokenizer.encode(prompt).filter((id) => id === bos).length, 2, 'tokenizer(prompt) would double the BOS');
    assert.equal(tokenizer.encode(prompt, { addSpecialTokens: false }).filter((id) => id === bos).length, 1);
  });
});
