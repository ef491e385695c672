#!/usr/bin/env python3
"""Golden fixtures for Cairn's chat template interpreter (Sources/CairnTrain/Tokenizer/ChatTemplate/).

Every expected text, span, token id and error comes from transformers (5.24, jinja2 3.1.6) itself:
`tokenizer.apply_chat_template(..., tokenize=False)` for the model templates and
`transformers.utils.chat_template_utils.render_jinja_template` (what apply_chat_template calls, with the
same message normalisation) for the synthetic ones.

Regenerate (needs `pip install transformers jinja2 tokenizers gguf trl`), from the repository root:

    .build/debug/cairn model import /root/.cache/cairn/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --out /tmp/smol-jinja
    python3 Tests/CairnTrainTests/Fixtures/chat_templates/make_fixtures.py --smollm2-dir /tmp/smol-jinja

It writes, next to this script:

  smollm2.jinja          SmolLM2-135M-Instruct's template, read from the GGUF's `tokenizer.chat_template`
                         (/root/.cache/cairn/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf, or --gguf PATH)
  qwen2_5.jinja          Qwen2.5-Instruct's template, copied byte for byte from trl 1.16's chat_templates/qwen2_5.jinja
                         (TRL compares it with the Hub's Qwen/Qwen2.5-*-Instruct in CI; llama.cpp's
                         models/templates/Qwen-Qwen2.5-7B-Instruct.jinja is the same bytes)
  qwen2_5_training.jinja TRL's Qwen2.5 training variant, with {% generation %} blocks (trl chat_templates/)
  llama3_1.jinja         Llama 3.1 Instruct's template (trl chat_templates/llama3_1.jinja, identical to llama.cpp's
                         models/templates/meta-llama-Llama-3.1-8B-Instruct.jinja)
  llama3_training.jinja  TRL's Llama 3 training variant, with {% generation %} blocks
  mistral_v0_1.jinja     Mistral-7B-Instruct-v0.1's template and
  mistral_v0_3.jinja     Mistral-7B-Instruct-v0.3's (with tool calls), written here from memory of the public
                         tokenizer_config.json files (no Hub access): they may differ from the Hub's bytes, which
                         does not matter for the tests, which compare Cairn with transformers on these texts
  models.json            for each model template, conversations (single and multi-turn, with and without a
                         system message, unicode, Jinja-looking content, Llama 3.1 / Qwen / Mistral tool calls,
                         Mistral's alternation error) x add_generation_prompt: the rendered text or the
                         exception (type, message); the UTF-8 spans of {% generation %} blocks
                         (transformers' generation_indices); the prefix spans (see `prefix_spans`); and for
                         SmolLM2 (its converted tokenizer from --smollm2-dir) the token ids, and the ids and
                         `assistant_masks` of apply_chat_template(return_assistant_tokens_mask=True) with the
                         Qwen2.5 training template
  constructs.json        small synthetic templates, one Jinja construct each (whitespace control,
                         literals, access, operators, loops, scoping, macros, filters, tests, methods,
                         globals, errors), rendered by transformers' environment; "cairn": "unsupported"
                         marks valid Jinja Cairn refuses (memory addresses, groupby, block, cycler)

    python3 .../make_fixtures.py --corpus OUT.json
        renders every template shipped in trl's chat_templates/ and in llama.cpp's models/templates/
        (llama-cpp-python's vendored copy, when installed) with four conversations x add_generation_prompt
        into OUT.json (8 MB, not committed); `CAIRN_CHAT_TEMPLATE_CORPUS=OUT.json swift test --filter
        ChatTemplate` compares Cairn with every case.
"""
import argparse
import glob
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SMOLLM2_GGUF = "/root/.cache/cairn/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

MISTRAL_V0_1 = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"

MISTRAL_V0_3 = r"""{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}
{%- set ns = namespace() %}
{%- set ns.index = 0 %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}
                {%- set tool = tool.function %}
                {{- '{"type": "function", "function": {' }}
                {%- for key, val in tool.items() if key != "return" %}
                    {%- if val is string %}
                        {{- '"' + key + '": "' + val + '"' }}
                    {%- else %}
                        {{- '"' + key + '": ' + val|tojson }}
                    {%- endif %}
                    {%- if not loop.last %}
                        {{- ", " }}
                    {%- endif %}
                {%- endfor %}
                {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
            {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message.tool_calls is defined and message.tool_calls is not none %}
        {{- "[TOOL_CALLS] [" }}
        {%- for tool_call in message.tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {%- if message.content is defined and message.content.content is defined %}
            {%- set content = message.content.content %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- '[TOOL_RESULTS] {"content": ' + content|string + ", " }}
        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}
            {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
        {%- endif %}
        {{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}"""

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "The city, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}]

# Synthetic constructs: (name, template, context); context keys as the case fields below.
M1 = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi <b>&'\"</b>"},
      {"role": "assistant", "content": "Hello! 😀 ünïcödé"}, {"role": "user", "content": "{{ not jinja }} {% raw %}"}]
D = dict(messages=M1, add_generation_prompt=True, special_tokens={"bos_token": "<s>", "eos_token": "</s>"})

CONSTRUCTS = []


def case(name, template, **ctx):
    c = dict(D)
    c.update(ctx)
    CONSTRUCTS.append((name, template, c))


# whitespace control, trim_blocks, lstrip_blocks
case("ws_plain", "{% for m in messages %}\n  {{ m.role }}\n{% endfor %}\n")
case("ws_dash", "A  \n  {%- if true -%}  \n  B  \n  {%- endif -%}\n  C")
case("ws_dash_var", "A  {{- 'x' -}}  B\n {{ 'y' }} \n{{- 'z' }}")
case("ws_lstrip", "line\n    {% if true %}\n    yes\n    {% endif %}\nend")
case("ws_lstrip_not_start", "x  {% if true %}y{% endif %}  z\n  {# c #}\nq")
case("ws_plus", "a\n    {%+ if true %}b{% endif +%}\nc")
case("ws_comment", "a\n  {# comment #}\nb{#- x -#}  \n c\n{# last #}")
case("ws_raw", "{% raw %}\n{{ x }}{% if %}\n  {% endraw %}\nafter")
case("ws_raw_dash", "a  {%- raw -%}  {{ y }}  {%- endraw -%}  b")
case("ws_trailing_newline", "x\n")
case("ws_two_trailing", "x\n\n")
case("ws_crlf", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc\r\n")
case("ws_var_newline", "{{ 'a' }}\n{{ 'b' }}\n")
case("ws_block_end_at_eof", "{% if true %}x{% endif %}")
case("ws_nested_indent", "{%- for m in messages %}\n    {%- if m.role == 'user' %}\n        U:{{ m.content }}\n    {%- else %}\n        O:{{ m.content }}\n    {%- endif %}\n{%- endfor %}")
case("ws_lstrip_tab", "\t  {% if true %}x{% endif %}\n\t{{ 'v' }}")
# literals
case("lit_strings", "{{ 'a\\nb' }}|{{ \"q\\\"t\" }}|{{ 'it\\'s' }}|{{ '\\u00e9\\x41\\101\\t' }}|{{ 'a' 'b' }}|{{ '\\d' }}|{{ 'é\\é' }}")
case("lit_numbers", "{{ 1 }} {{ 1.5 }} {{ 1e3 }} {{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 2.5e-3 }} {{ 1E2 }} {{ 10 / 4 }} {{ 10 / 5 }}")
case("lit_consts", "{{ true }} {{ True }} {{ false }} {{ none }} {{ None }} {{ [1, 'a', none, true, 1.0] }} {{ {'a': 1, 'b': [2]} }} {{ (1, 2) }} {{ (1,) }} {{ () }}")
case("lit_tuple_print", "{{ 1, 2 }}")
case("lit_nested", "{{ {'a': {'b': [1, {'c': 'd'}]}}['a']['b'][1].c }}")
case("lit_float_repr", "{{ 0.1 + 0.2 }} {{ 1/3 }} {{ 1e16 }} {{ 1e15 }} {{ 1e-5 }} {{ 0.0001 }} {{ 123456789.123 }} {{ -0.0 }} {{ 2.0 ** 70 }} {{ 1e300 * 10 }}")
case("lit_dict_order", "{{ {'z': 1, 'a': 2, 'm': 3} }}|{% for k in {'z': 1, 'a': 2} %}{{ k }}{% endfor %}")
case("lit_dict_dupe", "{{ {'a': 1, 'a': 2} }}")
case("lit_repr_strings", "{{ ['a\\'b', \"x\\\"y\", 'a\\'b\"c', '\\n\\t\\\\', '\\x00\\x7f\\u200b\\u00a0é😀', 'ok'] }}")
# attribute / item access
case("acc_attr_item", "{{ messages[0].role }}|{{ messages[0]['content'] }}|{{ messages[-1].role }}|{{ messages.0.role }}")
case("acc_missing", "[{{ messages[0].missing }}][{{ messages[10] }}][{{ foo }}][{{ messages[0]['nope'] }}]")
case("acc_missing_chain_error", "{{ messages[0].missing.deeper }}")
case("acc_undefined_attr_error", "{{ foo.bar }}")
case("acc_none_attr", "[{{ x.a }}][{{ x['a'] }}][{{ x[0] }}]", extra={"x": None})
case("acc_dict_method_shadow", "{{ d.items()|list }}|{{ d['items'] }}|{{ d.get('items') }}|{{ d.items is callable }}", extra={"d": {"items": 5, "x": 1}})
case("acc_print_method", "{{ d.items }}", extra={"d": {"x": 1}}, cairn="unsupported")  # jinja2 prints a memory address
case("acc_dict_keys", "{{ d.keys() }}|{{ d.values() }}|{{ d.items() }}|{{ d.items()|list }}|{{ d.get('x') }}|{{ d.get('q') }}|{{ d.get('q', 7) }}|{{ d.copy() }}", extra={"d": {"x": 1, "y": [1]}})
case("acc_str_index", "{{ s[0] }}{{ s[-1] }}{{ s[1:3] }}{{ s[::-1] }}{{ s[::2] }}{{ s[10] }}|{{ s[-10:] }}", extra={"s": "héllo😀"})
case("acc_list_slices", "{{ l[1:] }}{{ l[:-1] }}{{ l[::-1] }}{{ l[1:4:2] }}{{ l[-2:] }}{{ l[5:] }}{{ l[-100:2] }}{{ l[3:1] }}{{ l[::-2] }}", extra={"l": [1, 2, 3, 4, 5]})
case("acc_slice_none", "{{ x[1:] }}", extra={"x": None})
case("acc_slice_undefined", "{{ nope[1:] }}")
case("acc_slice_zero", "{{ [1][::0] }}")
case("acc_bool_index", "{{ l[true] }}{{ l[false] }}", extra={"l": [1, 2]})
case("acc_unsafe_dunder", "[{{ d.__class__ }}][{{ ''.__class__ }}]", extra={"d": {}})
case("acc_underscore_key", "{{ d._x }}", extra={"d": {"_x": 3}})
case("acc_list_append_render", "[{{ l.append }}]", extra={"l": [1]})
case("acc_list_append_call", "{{ l.append(2) }}", extra={"l": [1]})
case("acc_dict_pop", "{{ d.pop('a') }}", extra={"d": {"a": 1}})
case("acc_dict_update", "{% set x = d.update({'b': 2}) %}", extra={"d": {"a": 1}})
case("acc_list_methods", "{{ l.index(2) }}{{ l.count(1) }}{{ l.copy() }}", extra={"l": [1, 2, 1]})
# operators
case("op_arith", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 2 ** -1 }} {{ 1 + true }}")
case("op_string", "{{ 'a' + 'b' }} {{ 'ab' * 3 }} {{ 3 * 'x' }} {{ 'a' ~ 1 ~ none ~ true ~ 1.0 ~ [1] }} {{ [1] + [2] }} {{ [0] * 3 }}")
case("op_str_plus_int", "{{ 'a' + 1 }}")
case("op_int_plus_str", "{{ 1 + 'a' }}")
case("op_undefined_plus", "{{ nope + 1 }}")
case("op_undefined_concat", "[{{ nope ~ 'x' }}]")
case("op_div_zero", "{{ 1 / 0 }}")
case("op_mod_zero", "{{ 1 % 0 }}")
case("op_compare", "{{ 1 < 2 }} {{ 2 <= 2 }} {{ 3 > 4 }} {{ 'a' < 'b' }} {{ 'B' < 'a' }} {{ [1, 2] < [1, 3] }} {{ 1 == 1.0 }} {{ true == 1 }} {{ '1' == 1 }} {{ none == none }} {{ nope == nope }} {{ nope == none }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 != 2 }} {{ (1, 2) == [1, 2] }}")
case("op_compare_error", "{{ 1 < 'a' }}")
case("op_compare_undefined", "{{ nope < 1 }}")
case("op_in", "{{ 'a' in 'cat' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'x' not in 'abc' }} {{ 1 in nope }} {{ 'user' in messages|map(attribute='role') }}")
case("op_in_error", "{{ 1 in 'abc' }}")
case("op_logic", "{{ 0 or 'x' }} {{ 1 and 'y' }} {{ '' and 'z' }} {{ none or none }} {{ not 0 }} {{ not nope }} {{ 1 if true else 2 }} {{ 1 if false else 2 }} [{{ 1 if false }}] {{ 'a' if 0 else 'b' if 1 else 'c' }}")
case("op_unary", "{{ -1 }} {{ -(1 + 2) }} {{ +3 }} {{ -1.5 }} {{ --2 }} {{ -'a'|length }}")
case("op_neg_str", "{{ -'a' }}")
case("op_precedence_filter", "{{ 'a' + ' b ' | trim }}|{{ -3|abs }}|{{ 1 + 2 | string }}|{{ (1 + 2) | string }}")
case("op_printf", "{{ '%s-%s' % ('a', 1) }} {{ '%d%%' % 5 }} {{ '%5.2f|%-4s|%04d' % (3.14159, 'ab', 7) }} {{ '%(x)s' % {'x': 1} }} {{ '%r' % 'q' }} {{ '%x %X %o' % (255, 255, 8) }} {{ '%s' % [1] }}")
case("op_printf_error", "{{ '%s %s' % ('a',) }}")
# if / for / loop
case("if_chain", "{% for x in [1, 2, 3, 4] %}{% if x == 1 %}one{% elif x == 2 %}two{% elif x is odd %}odd{% else %}else{% endif %} {% endfor %}")
case("for_loop_vars", "{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}/{{ loop.depth }}|{% endfor %}")
case("for_prev_next", "{% for x in [1, 2, 3] %}[{{ loop.previtem }},{{ loop.nextitem }}]{% endfor %}")
case("for_cycle_changed", "{% for x in [1, 1, 2, 3, 3] %}{{ loop.cycle('a', 'b', 'c') }}{% if loop.changed(x) %}!{{ x }}{% endif %}{% endfor %}")
case("for_else", "{% for x in [] %}x{% else %}empty{% endfor %}{% for x in nope %}y{% else %}none{% endfor %}")
case("for_filter", "{% for m in messages if m.role != 'system' %}{{ loop.index }}{{ m.role }}{{ loop.last }}{{ loop.length }} {% endfor %}")
case("for_filter_else", "{% for x in [1, 2] if x > 5 %}{{ x }}{% else %}nothing{% endfor %}")
case("for_unpack", "{% for a, b in [[1, 2], (3, 4)] %}{{ a }}-{{ b }};{% endfor %}{% for k, v in {'x': 1, 'y': 2}.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in {'x': 1}|items %}{{ k }}{{ v }}{% endfor %}")
case("for_unpack_error", "{% for a, b in [[1, 2, 3]] %}{% endfor %}")
case("for_string", "{% for c in 'hé😀' %}[{{ c }}]{% endfor %}")
case("for_dict", "{% for k in {'b': 1, 'a': 2} %}{{ k }}{% endfor %}")
case("for_int_error", "{% for x in 5 %}{% endfor %}")
case("for_none_error", "{% for x in none %}{% endfor %}")
case("for_nested", "{% for i in range(2) %}{% for j in range(2) %}{{ loop.index }}{{ i }}{{ j }} {% endfor %}{{ loop.index }}|{% endfor %}")
case("for_break_continue", "{% for i in range(10) %}{% if i is even %}{% continue %}{% endif %}{% if i > 6 %}{% break %}{% endif %}{{ i }}{% endfor %}")
case("for_break_outside", "{% break %}")
case("for_scope", "{% set x = 0 %}{% for i in [1, 2] %}[{{ x }}]{% set x = i %}[{{ x }}]{% endfor %}{{ x }}")
case("for_scope_fresh", "{% for i in [1, 2] %}[{{ y }}]{% set y = i %}{% endfor %}[{{ y }}][{{ i }}]")
case("for_loop_in_filter", "{% for x in [3, 1, 2] if x > 1 %}{{ x }}{{ loop.first }}{% endfor %}")
case("for_over_loopvar_outer", "{% for a in [1, 2] %}{% set outer = loop %}{% for b in [1] %}{{ outer.index }}{{ loop.index }}{% endfor %}{% endfor %}")
case("for_tuple_iter", "{% for x in 1, 2 %}{{ x }}{% endfor %}")
case("for_recursive", "{% for x in [[1, [2]], 3] recursive %}{% if x is iterable %}{{ loop(x) }}{% else %}{{ x }}{% endif %}{% endfor %}")
# set / namespace / scoping
case("set_basic", "{% set a = 1 %}{% set b, c = 2, 3 %}{% set d = 'x', 'y' %}{{ a }}{{ b }}{{ c }}{{ d }}")
case("set_in_if", "{% set x = 5 %}{% if true %}{% set x = 6 %}{% endif %}{{ x }}")
case("set_block", "{% set x %}  hi {{ 1 + 1 }}\n{% endset %}[{{ x }}]{% set y | upper | trim %} shout {% endset %}[{{ y }}]")
case("set_block_scope", "{% set x %}{% set inner = 1 %}v{% endset %}{{ x }}[{{ inner }}]")
case("ns_basic", "{% set ns = namespace(count=0, found=false) %}{% for m in messages %}{% if m.role == 'user' %}{% set ns.count = ns.count + 1 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.count }}{{ ns.found }}{{ ns }}")
case("ns_underscore", "{% set ns = namespace() %}{% set ns._x = 1 %}")
case("ns_underscore_init", "{% set ns = namespace(_x=1) %}")
case("ns_not_namespace", "{% set d = {} %}{% set d.x = 1 %}")
case("ns_item", "{% set ns = namespace(a=1) %}{{ ns['a'] }}[{{ ns.b }}]{{ ns.a is defined }}{{ ns.b is defined }}")
case("ns_dict_arg", "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}")
case("with_block", "{% with a = 1, b = 2 %}{{ a + b }}{% set c = 3 %}{% endwith %}[{{ a }}{{ c }}]")
case("set_loop_target_shadow", "{% set m = 'outer' %}{% for m in ['inner'] %}{{ m }}{% endfor %}{{ m }}")
# macros / call / filter block
case("macro_basic", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', '?') }} {{ greet(name='C', punct='.') }} [{{ greet() }}]")
case("macro_scope", "{% set g = 1 %}{% macro m() %}{{ g }}{{ h }}{% endmacro %}{% set h = 2 %}{{ m() }}{% for i in [1] %}{% set g = 9 %}{{ m() }}{% endfor %}")
case("macro_varargs", "{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, x=4) }}")
case("macro_too_many", "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}")
case("macro_bad_kw", "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(b=2) }}")
case("macro_call_block", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('p') %}inside {{ 1 }}{% endcall %}")
case("macro_call_args", "{% macro each(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(x) each([1, 2]) %}[{{ x }}]{% endcall %}")
case("macro_recursive", "{% macro r(n) %}{% if n > 0 %}{{ n }}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(3) }}")
case("macro_returns_str", "{% macro m() %}<x>{% endmacro %}{{ m() + '<' }}|{{ m()|length }}")
case("macro_default_refs_arg", "{% macro m(a, b=a * 2) %}{{ a }}{{ b }}{% endmacro %}{{ m(3) }}")
case("filter_block", "{% filter upper %}hello {{ 'world' }}{% endfilter %}|{% filter replace('a', 'o') | trim %} banana {% endfilter %}")
case("print_stmt", "{% print 'a', 1 %}")
case("generation_block", "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}!{% endgeneration %}{% else %}{{ m.content }}{% endif %}\n{% endfor %}", spans=True)
case("generation_ws", "{%- for m in messages %}\n  {%- if m.role == 'assistant' %}\n    {%- generation %}\n      {{- m.content }}\n    {%- endgeneration %}\n  {%- else %}\n    {{- m.content }}\n  {%- endif %}\n{%- endfor %}", spans=True)
case("generation_scope", "{% generation %}{% set g = 1 %}x{% endgeneration %}[{{ g }}]", spans=True)
case("generation_in_macro", "{% macro m(c) %}<{% generation %}{{ c }}{% endgeneration %}>{% endmacro %}pre{{ 'ab' }}{{ m('x') }}{{ m('y') }}", spans=True)
# filters
case("f_trim", "[{{ '  a b \\n'|trim }}][{{ 'xxaxx'|trim('x') }}][{{ nope|trim }}][{{ 12|trim }}]")
case("f_tojson", "{{ tools|tojson }}\n{{ tools|tojson(indent=2) }}\n{{ {'a': 'é\"\\n', 'b': none, 'c': [1.0, true, 1e20]}|tojson }}\n{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}\n{{ 'é'|tojson(true) }}\n{{ [1, [2, []], {}]|tojson(indent=4) }}\n{{ [1,2]|tojson(separators=(',', ':')) }}\n{{ 'x'|tojson(indent='\\t') }}{{ {'k': [1]}|tojson(indent='--') }}\n{{ {1: 2, none: 3, true: 4, 1.5: 5}|tojson }}")
case("f_tojson_bool_indent", "{{ [1, {'a': 2}]|tojson(indent=true) }}|{{ [1]|tojson(indent=false) }}|{{ {'a': 1}|tojson(indent=0) }}")
case("f_tojson_undefined", "{{ nope|tojson }}")
case("f_tojson_emoji_ascii", "{{ '😀<>&\\u007f'|tojson(ensure_ascii=true) }}{{ '<>&\\'\\u2028'|tojson }}")
case("f_length", "{{ messages|length }}{{ 'héllo😀'|length }}{{ {'a': 1}|count }}{{ nope|length }}{{ (1, 2)|length }}{{ range(5)|length }}")
case("f_length_error", "{{ 5|length }}")
case("f_case", "{{ 'hello WORLD'|upper }}|{{ 'HeLLo'|lower }}|{{ 'hello-wORLD foo(bar) [x] {y} <z> a_b'|title }}|{{ 'hELLO wORLD'|capitalize }}|{{ 'straße'|upper }}|{{ \"they're bill's\"|title }}")
case("f_default", "[{{ nope|default('d') }}][{{ nope|d('dd') }}][{{ ''|default('e') }}][{{ ''|default('e', true) }}][{{ none|default('n') }}][{{ 0|d(5, boolean=true) }}][{{ nope|default }}]")
case("f_join", "{{ ['a', 'b']|join }}|{{ ['a', 'b']|join(', ') }}|{{ [1, none, 'x']|join('-') }}|{{ messages|join('/', attribute='role') }}|{{ nope|join(',') }}|{{ 'abc'|join('.') }}")
case("f_first_last", "{{ [1, 2, 3]|first }}{{ [1, 2, 3]|last }}{{ 'abc'|first }}{{ 'abc'|last }}[{{ []|first }}][{{ []|last }}]{{ {'k': 1, 'j': 2}|first }}{{ {'k': 1, 'j': 2}|last }}[{{ nope|first }}][{{ nope|last }}]")
case("f_items_list", "{{ {'a': 1}|items|list }}|{{ 'ab'|list }}|{{ {'a': 1}|list }}|{{ nope|list }}|{{ (1, 2)|list }}|{{ range(3)|list }}")
case("f_items_error", "{% for k in 5|items %}{% endfor %}")
case("f_string", "{{ 1|string }}|{{ none|string }}|{{ [1, 'a']|string }}|{{ (1|string) + 'x' }}|{{ {'a': none}|string }}|[{{ nope|string }}]")
case("f_int_float", "{{ '42'|int }} {{ '42.9'|int }} {{ 'x'|int }} {{ 'x'|int(-1) }} {{ ' 7 '|int }} {{ '0x1f'|int(0, 16) }} {{ '0b11'|int(0, 0) }} {{ '1_000'|int }} {{ 3.99|int }} {{ -3.99|int }} {{ true|int }} {{ none|int }} {{ '3'|float }} {{ '1e3'|float }} {{ 'x'|float }} {{ 'x'|float(1.5) }} {{ 2|float }} {{ ' 2.5 '|float }} {{ 'inf'|float }}")
case("f_abs_round", "{{ -3|abs }} {{ -2.5|abs }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ 2.567|round(1, 'floor') }} {{ 2.512|round(1, 'ceil') }} {{ 3|round }} {{ -0.5|round }}")
case("f_replace", "{{ 'aaa'|replace('a', 'b') }}|{{ 'aaa'|replace('a', 'b', 2) }}|{{ 'abc'|replace('', '-') }}|{{ 5|replace('5', 'five') }}|{{ nope|replace('a', 'b') }}")
case("f_select", "{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }}|{{ messages|rejectattr('role', 'eq', 'user')|list|length }}|{{ [0, 1, 2, none]|select|list }}|{{ [1, 2, 3, 4]|reject('odd')|list }}|{{ [1, 2, 3]|select('gt', 1)|list }}|{{ messages|selectattr('nope')|list }}|{{ [{'a': {'b': 1}}, {'a': {'b': 0}}]|selectattr('a.b')|list }}")
case("f_map", "{{ ['a', 'B']|map('upper')|list }}|{{ messages|map(attribute='role')|join(',') }}|{{ [{'x': 1}, {}]|map(attribute='x', default='d')|list }}|{{ ['a b', 'c']|map('replace', ' ', '_')|list }}|{{ [[1, 2]]|map(attribute='0')|list }}")
case("f_generator_truthy", "{% set g = []|select %}{{ 'yes' if g else 'no' }}|{% set l = []|select|list %}{{ 'yes' if l else 'no' }}")
case("f_generator_length", "{{ [1]|select|length }}")
case("f_generator_once", "{% set g = [1, 2]|map('string') %}{{ g|join }}|{{ g|join }}")
case("f_sort", "{{ [3, 1, 2]|sort }}|{{ [3, 1, 2]|sort(reverse=true) }}|{{ ['b', 'A', 'c']|sort }}|{{ ['b', 'A', 'c']|sort(case_sensitive=true) }}|{{ messages|sort(attribute='role')|map(attribute='role')|list }}|{{ [{'a': 2, 'b': 1}, {'a': 1, 'b': 2}]|sort(attribute='a,b')|list }}")
case("f_sort_error", "{{ [1, 'a']|sort }}")
case("f_dictsort", "{{ {'b': 1, 'A': 2, 'c': 0}|dictsort }}|{{ {'b': 1, 'A': 2}|dictsort(true) }}|{{ {'b': 1, 'a': 2}|dictsort(by='value') }}|{{ {'b': 1, 'a': 2}|dictsort(reverse=true) }}")
case("f_unique_minmax_sum", "{{ ['a', 'A', 'b', 'a']|unique|list }}|{{ ['a', 'A']|unique(case_sensitive=true)|list }}|{{ [3, 1, 2]|min }}{{ [3, 1, 2]|max }}{{ ['b', 'A']|min }}[{{ []|max }}]|{{ [1, 2, 3]|sum }}|{{ [1.5, 2]|sum }}|{{ [{'x': 1}, {'x': 2}]|sum(attribute='x') }}|{{ [[1], [2]]|sum(start=[]) }}")
case("f_reverse", "{{ 'abc'|reverse }}|{{ [1, 2, 3]|reverse|list }}|{{ (1, 2)|reverse|list }}|{{ {'a': 1, 'b': 2}|reverse|list }}")
case("f_indent", "[{{ 'a\\nb\\n\\nc'|indent }}][{{ 'a\\nb'|indent(2, true) }}][{{ 'a\\n\\nb'|indent('> ', blank=true) }}][{{ 'x'|indent(first=true) }}][{{ 'a\\r\\nb'|indent(1) }}][{{ ''|indent(first=true) }}]")
case("f_escape_safe", "{{ '<a href=\"x\">&\\'</a>'|e }}|{{ '<b>'|escape }}|{{ '<i>'|safe }}|{{ ('<'|safe) + '<' }}|{{ '<' + ('<'|safe) }}|{{ ('<'|e) ~ '<' }}|{{ ('a'|safe)|length }}|{{ 3|e }}|{{ none|e }}|{{ ('<'|e)|e }}|{{ ('<'|e)|forceescape }}|{{ ('%s'|safe) % '<' }}|{{ ['<', '<'|safe]|join }}|{{ ('<x>'|safe)|trim + '<' }}|{{ ('x'|safe).upper() + '<' }}|{{ ('a b'|safe).split()|first + '<' }}")
case("f_format", "{{ '%s and %s'|format('a', 'b') }}|{{ '%(n)s!'|format(n='x') }}|{{ '%.3f'|format(3.14159) }}|{{ '%5d|%-5d|%+d'|format(42, 42, 42) }}")
case("f_center_wordcount_truncate", "[{{ 'ab'|center(7) }}][{{ 'ab'|center(6) }}]{{ 'a b-c d_e'|wordcount }}|{{ 'hello world foo bar baz'|truncate(9) }}|{{ 'hello world foo bar baz'|truncate(9, true) }}|{{ 'hello'|truncate(9) }}|{{ 'hello world foo'|truncate(11, false, '..', 0) }}")
case("f_batch_slice", "{{ [1, 2, 3, 4, 5]|batch(2)|list }}|{{ [1, 2, 3, 4, 5]|batch(2, 0)|list }}|{{ [1, 2, 3, 4, 5]|slice(3)|list }}|{{ [1, 2, 3, 4]|slice(3, 'x')|list }}")
case("f_attr", "[{{ messages[0]|attr('role') }}][{{ 'ab'|attr('upper') is callable }}]")
case("f_unknown", "{{ 'a'|nosuchfilter }}")
case("f_unknown_in_if", "{% if false %}{{ 'a'|nosuchfilter }}{% endif %}ok")
case("f_unknown_in_if_reached", "{% if true %}{{ 'a'|nosuchfilter }}{% endif %}ok")
case("f_unsupported_groupby", "{{ messages|groupby('role')|list }}", cairn="unsupported")
# tests
case("t_basic", "{{ nope is defined }}{{ nope is undefined }}{{ none is none }}{{ 1 is number }}{{ true is number }}{{ 1 is integer }}{{ true is integer }}{{ 1.0 is float }}{{ 1.0 is integer }}{{ 'a' is string }}{{ {} is mapping }}{{ [] is mapping }}{{ [] is iterable }}{{ 'a' is iterable }}{{ 1 is iterable }}{{ nope is iterable }}{{ [] is sequence }}{{ {} is sequence }}{{ 'a' is sequence }}{{ {}.items() is sequence }}{{ true is boolean }}{{ 1 is boolean }}{{ true is true }}{{ 1 is true }}{{ false is false }}")
case("t_args", "{{ 4 is even }}{{ 3 is odd }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}{{ 'a' is equalto 'a' }}{{ 1 is eq 1 }}{{ 1 is ne 2 }}{{ 1 is lt 2 }}{{ 2 is gt 1 }}{{ 2 is ge 2 }}{{ 1 is le 0 }}{{ 'a' is in 'abc' }}{{ 2 is in [1] }}{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ 'aB' is lower }}{{ 1 is not none }}{{ nope is not defined }}{{ 2 is greaterthan 1 }}{{ 1 is lessthan 2 }}")
case("t_callable_escaped", "{{ messages is callable }}{{ range is callable }}{{ nope is callable }}{{ ('a'|e) is escaped }}{{ 'a' is escaped }}{{ 'upper' is filter }}{{ 'nope' is filter }}{{ 'odd' is test }}{{ 2.0 is even }}{{ none is sameas none }}{{ true is sameas true }}")
case("t_precedence", "{{ not nope is defined }}{{ 1 is number and 'a' is string }}{{ 2 is divisibleby 2 and true }}{{ x is defined and x > 1 }}", extra={"x": 3})
case("t_chain_error", "{{ 1 is number is number }}")
case("t_unknown", "{{ 1 is nosuchtest }}")
# methods
case("m_str", "{{ ' a b '.strip() }}|{{ 'xax'.strip('x') }}|{{ ' a'.lstrip() }}|{{ 'a '.rstrip() }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a b c'.rsplit(' ', 1) }}|{{ 'a\\nb\\r\\nc'.splitlines() }}|{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}{{ 'abc'.startswith('b', 1) }}|{{ 'aXa'.replace('a', 'b') }}|{{ 'hello'.upper() }}{{ 'HeLLo'.lower() }}{{ 'hello world'.title() }}{{ 'hELLo'.capitalize() }}{{ 'aB'.swapcase() }}")
case("m_str2", "{{ 'abcabc'.find('c') }}{{ 'abc'.find('z') }}{{ 'abcabc'.rfind('c') }}{{ 'abcabc'.count('b') }}{{ ', '.join(['a', 'b']) }}{{ 'ab'.center(6, '*') }}{{ 'ab'.ljust(4, '.') }}{{ 'ab'.rjust(4) }}{{ '42'.zfill(5) }}{{ '-4'.zfill(4) }}|{{ '123'.isdigit() }}{{ 'ab'.isalpha() }}{{ ' '.isspace() }}{{ 'Ab'.istitle() }}{{ 'ab1'.isalnum() }}{{ 'ab'.islower() }}{{ 'AB'.isupper() }}|{{ 'a=b=c'.partition('=') }}{{ 'a=b=c'.rpartition('=') }}{{ 'a'.partition('=') }}|{{ 'prefix_x'.removeprefix('prefix_') }}{{ 'x.txt'.removesuffix('.txt') }}")
case("m_str_format", "{{ '{} {}'.format('a', 1) }}|{{ '{0}{1}{0}'.format('x', 'y') }}|{{ '{name}!'.format(name='n') }}|{{ '{:>5}|{:<5}|{:^5}|{:*^7}'.format('a', 'b', 'c', 'd') }}|{{ '{:.2f} {:5d} {:05d} {:+d} {:x}'.format(3.14159, 42, 42, 42, 255) }}|{{ '{!r}'.format('q') }}|{{ '{{}} {}'.format(1) }}|{{ '{}'.format(none) }}|{{ '{}'.format([1]) }}|{{ '{:.1%}'.format(0.25) }}")
case("m_str_index_error", "{{ 'abc'.index('z') }}")
case("m_str_unknown", "{{ 'abc'.nosuch() }}")
case("m_str_join_error", "{{ ', '.join([1, 2]) }}")
case("m_split_maxsplit_kw", "{{ 'a b c'.split(maxsplit=1) }}|{{ 'a,b'.split(sep=',') }}")
# globals
case("g_range", "{{ range(3) }}{{ range(1, 4)|list }}{{ range(0, 10, 3)|list }}{{ range(5, 0, -2)|list }}{{ range(3)[1] }}{{ range(3)|length }}")
case("g_range_big", "{{ range(100001)|length }}")
case("g_dict", "{{ dict(a=1, b=2) }}{{ dict([('x', 1)]) }}{{ dict({'q': 2}, z=1) }}")
case("g_raise", "{{ raise_exception('Custom failure: ' ~ messages|length) }}")
case("g_raise_in_loop", "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% endfor %}")
case("g_joiner", "{% set j = joiner(' | ') %}{% for m in messages %}{{ j() }}{{ m.role }}{% endfor %}")
case("g_context", "{{ bos_token }}{{ eos_token }}[{{ unk_token }}]{{ add_generation_prompt }}{{ tools }}{{ documents }}{{ tools is none }}{{ tools is defined }}{{ custom }}", extra={"custom": "c"})
case("g_override_global", "{{ range }}", extra={"range": "shadowed"})
# syntax errors
case("syn_unclosed", "{% if true %}x")
case("syn_unknown_tag", "{% foo %}")
case("syn_do", "{% do x.append(1) %}")
case("syn_bad_expr", "{{ 1 + }}")
case("syn_unclosed_var", "{{ x ")
case("syn_unclosed_comment", "{# x")
case("syn_unbalanced", "{{ (1 }}")
case("syn_endfor_mismatch", "{% for x in y %}{% endif %}")
case("syn_string_unterminated", "{{ 'abc }}")
case("syn_assign_const", "{% set true = 1 %}")
case("syn_elif_after_else", "{% if a %}{% else %}{% elif b %}{% endif %}")
# unsupported constructs (valid jinja2)
case("uns_include", "{% include 'x.jinja' %}", cairn="unsupported")
case("uns_extends", "{% extends 'base' %}", cairn="unsupported")
case("uns_block", "{% block body %}content{% endblock %}", cairn="unsupported")
case("uns_cycler", "{{ cycler('a', 'b').next() }}", cairn="unsupported")
# messages normalisation
case("norm_none_dropped", "{% for m in messages %}{{ m.content is defined }}{{ m.tool_calls is defined }}|{% endfor %}",
     messages=[{"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}, {"role": "user", "content": "x", "tool_calls": None}])
case("norm_reasoning_alias", "{% for m in messages %}{{ m }}|{% endfor %}",
     messages=[{"role": "assistant", "content": "x", "reasoning": "think"}, {"role": "assistant", "thinking": "t2", "content": "y"}, {"role": "user", "content": "z"}])
case("norm_content_list", "{% for m in messages %}{% if m.content is string %}{{ m.content }}{% else %}{% for part in m.content %}[{{ part.type }}:{{ part.text }}]{% endfor %}{% endif %}{% endfor %}",
     messages=[{"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "image"}]}, {"role": "assistant", "content": "ok"}])
case("tools_render", "{% for t in tools %}{{ t.function.name }}: {{ t.function.parameters.properties|tojson }}{% for k, v in t.function.parameters.properties.items() %} {{ k }}={{ v.type }}{% endfor %}{% endfor %}", tools=TOOLS)
case("documents_render", "{% for d in documents %}{{ d.title }}: {{ d.text }}\n{% endfor %}", documents=[{"title": "A", "text": "aa"}, {"title": "B", "text": "bb"}])
case("int_big_json", "{{ x|tojson }} {{ x }}", extra={"x": {"n": 12345678901234, "f": 0.5, "neg": -3, "e": 1.5e-10}})
case("tojson_tuple_markup", "{{ (1, 'a')|tojson }}|{{ {'k': 'v'|safe}|tojson }}|{{ {'k': 'v'|safe} }}")
case("ns_list_grow", "{% set ns = namespace(items=[]) %}{% for m in messages %}{% set ns.items = ns.items + [m.role] %}{% endfor %}{{ ns.items|join(',') }}")
case("system_split_pattern", "{% if messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] %}{% set rest = messages[1:] %}{% else %}{% set rest = messages %}{% endif %}[{{ sys }}]{% for m in rest %}{{ loop.index0 }}{{ m['role'][0]|upper }}{% endfor %}")
case("content_strip_chain", "{% for m in messages %}{{ m.content.split('!')[0].strip()|lower }};{% endfor %}")
case("if_tuple_test", "{% if 1, 2 %}tuple{% endif %}")
case("lit_unicode_keys", "{{ {'e\u0301': 1, '\u00e9': 2} }}|{{ {'e\u0301': 1}['\u00e9'] }}|{{ '\u00e9' == 'e\u0301' }}|{{ ['\u00e9', 'e\u0301']|unique|list|length }}|{{ 'e\u0301' in ['\u00e9'] }}|{{ {nope: 1, other: 2} }}")
case("keyword_names", "{{ {'if': 1}['if'] }}{% set in_ = 2 %}{{ in_ }}")

CONVERSATIONS = {
    "single": {"messages": [{"role": "user", "content": "What is 12+30?"}]},
    "multi": {"messages": [{"role": "user", "content": "What is 12+30?"}, {"role": "assistant", "content": "42"},
                           {"role": "user", "content": "And 12*3?"}, {"role": "assistant", "content": "36"}]},
    "system": {"messages": [{"role": "system", "content": "You are a terse assistant."}, {"role": "user", "content": "Hi"},
                            {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"}]},
    "unicode": {"messages": [{"role": "user", "content": "Héllo wörld 😀 中文 — “quotes” \u200b\u00a0tab\there"},
                             {"role": "assistant", "content": "ünïcödé → ✓ 🎉"}]},
    "jinja_text": {"messages": [{"role": "user", "content": "{{ messages }} {% if true %}x{% endif %} {# c #} {%- raw %}"},
                                {"role": "assistant", "content": "}}{{ '<b>' }}{% endfor %} <|im_end|>"}]},
    "whitespace": {"messages": [{"role": "user", "content": "  padded question  \n\n"},
                                {"role": "assistant", "content": "\n  spaced answer \n"}]},
    "tools": {"tools": TOOLS, "messages": [
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call12345", "type": "function",
            "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
        {"role": "tool", "tool_call_id": "call12345", "name": "get_weather", "content": "{\"temperature\": 21}"},
        {"role": "assistant", "content": "It is 21 °C in Paris."}]},
    "alternation_error": {"messages": [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Hi again"}]},
}
COMMON = ["single", "multi", "system", "unicode", "jinja_text", "whitespace"]
QWEN = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
LLAMA = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}
MISTRAL = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
MODELS = {  # name: (special tokens, conversations)
    "smollm2": (None, COMMON),
    "qwen2_5": (QWEN, COMMON + ["tools"]),
    "qwen2_5_training": (QWEN, COMMON + ["tools"]),
    "llama3_1": (LLAMA, COMMON + ["tools"]),
    "llama3_training": (LLAMA, COMMON),
    "mistral_v0_1": (MISTRAL, COMMON + ["alternation_error"]),
    "mistral_v0_3": (MISTRAL, COMMON + ["tools", "alternation_error"]),
}


def write_templates(gguf_path):
    from gguf import GGUFReader
    import trl
    field = GGUFReader(gguf_path).fields["tokenizer.chat_template"]
    texts = {"smollm2": bytes(field.parts[field.data[0]]).decode("utf-8"),
             "mistral_v0_1": MISTRAL_V0_1, "mistral_v0_3": MISTRAL_V0_3}
    trl_dir = os.path.join(os.path.dirname(trl.__file__), "chat_templates")
    for name in ["qwen2_5", "qwen2_5_training", "llama3_1", "llama3_training"]:
        with open(os.path.join(trl_dir, name + ".jinja"), encoding="utf-8") as f:
            texts[name] = f.read()
    for name, text in texts.items():
        with open(os.path.join(HERE, name + ".jinja"), "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return texts


def has_generation(template):
    """transformers' test for {% generation %} blocks."""
    return re.search(r"\{\%-?\s*generation\s*-?\%\}", template) is not None


def utf8_spans(text, spans):
    """Code point ranges (Python's string indices) as UTF-8 byte ranges."""
    return [[len(text[:a].encode("utf-8")), len(text[:b].encode("utf-8"))] for a, b in spans]


def tokenizer_for(special, template):
    """A tokenizer whose special_tokens_map is `special` (for tokenize=False rendering only)."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]")),
                                  chat_template=template, **special)
    assert tok.special_tokens_map == special, tok.special_tokens_map
    return tok


def exception(e):
    return {"error": str(e), "error_type": type(e).__name__}


def generation_spans(tok, template, conv, agp):
    from transformers.utils.chat_template_utils import _normalize_chat_messages, render_jinja_template
    rendered, indices = render_jinja_template(
        conversations=[_normalize_chat_messages(conv["messages"])], tools=conv.get("tools"), chat_template=template,
        return_assistant_tokens_mask=True, add_generation_prompt=agp, **tok.special_tokens_map)
    return utf8_spans(rendered[0], indices[0])


def prefix_spans(tok, conv):
    """For each assistant message i: [len(P), len(F)) in UTF-8 bytes, where P renders messages[:i] with
    add_generation_prompt and F renders messages[:i+1] without; None when P is not a prefix of F or F of the
    whole rendering (Cairn must refuse those)."""
    msgs, tools = conv["messages"], conv.get("tools")
    render = lambda m, agp: tok.apply_chat_template(m, tools=tools, tokenize=False, add_generation_prompt=agp)
    full = render(msgs, False).encode("utf-8")
    spans = []
    for i, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        p, f = render(msgs[:i], True).encode("utf-8"), render(msgs[:i + 1], False).encode("utf-8")
        if not f.startswith(p) or not full.startswith(f):
            return None
        spans.append([len(p), len(f)])
    return spans


def model_fixtures(texts, smollm2_dir):
    from transformers import AutoTokenizer
    smol = AutoTokenizer.from_pretrained(smollm2_dir)
    out = {"conversations": CONVERSATIONS, "special_tokens": {}, "cases": [], "spans": [], "masks": []}
    for model, (special, conv_names) in MODELS.items():
        template = texts[model]
        tok = smol if model == "smollm2" else tokenizer_for(special, template)
        if model == "smollm2":
            assert tok.chat_template == template
        out["special_tokens"][model] = tok.special_tokens_map
        for cname in conv_names:
            conv = CONVERSATIONS[cname]
            for agp in (True, False):
                case = {"model": model, "conversation": cname, "add_generation_prompt": agp}
                try:
                    case["expected"] = tok.apply_chat_template(conv["messages"], tools=conv.get("tools"), tokenize=False,
                                                               add_generation_prompt=agp)
                    if has_generation(template):
                        case["generation_spans"] = generation_spans(tok, template, conv, agp)
                    if model == "smollm2":
                        case["ids"] = tok.apply_chat_template(conv["messages"], tokenize=True, return_dict=False,
                                                              add_generation_prompt=agp)
                except Exception as e:  # noqa: BLE001 - the exception is the expected result
                    case.update(exception(e))
                out["cases"].append(case)
            if not has_generation(template) and "error" not in out["cases"][-1]:
                out["spans"].append({"model": model, "conversation": cname, "prefix_spans": prefix_spans(tok, conv)})
    for cname in ["multi", "system", "unicode", "jinja_text", "whitespace", "tools"]:
        conv = CONVERSATIONS[cname]
        r = smol.apply_chat_template(conv["messages"], tools=conv.get("tools"), chat_template=texts["qwen2_5_training"],
                                     tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        out["masks"].append({"conversation": cname, "template": "qwen2_5_training", "ids": list(r["input_ids"]),
                             "assistant_masks": list(r["assistant_masks"])})
    return out


def render_case(template, ctx):
    from transformers.utils.chat_template_utils import _normalize_chat_messages, render_jinja_template
    kwargs = {**ctx.get("special_tokens", {}), **ctx.get("extra", {})}
    rendered, indices = render_jinja_template(
        conversations=[_normalize_chat_messages(ctx.get("messages", []))], tools=ctx.get("tools"),
        documents=ctx.get("documents"), chat_template=template, return_assistant_tokens_mask=True,
        add_generation_prompt=ctx.get("add_generation_prompt", False), **kwargs)
    return rendered[0], utf8_spans(rendered[0], indices[0])


def construct_fixtures():
    cases = []
    for name, template, ctx in CONSTRUCTS:
        c = {"name": name, "template": template}
        for k in ["messages", "tools", "documents", "add_generation_prompt", "special_tokens", "extra", "cairn"]:
            if k in ctx:
                c[k] = ctx[k]
        try:
            c["expected"], spans = render_case(template, ctx)
            if has_generation(template):
                c["generation_spans"] = spans
        except Exception as e:  # noqa: BLE001
            c.update(exception(e))
        cases.append(c)
    return cases


def corpus(path):
    import trl
    dirs = [os.path.join(os.path.dirname(trl.__file__), "chat_templates")]
    try:
        import llama_cpp  # noqa: F401 - only its vendored llama.cpp templates are used
        dirs += glob.glob(os.path.join(os.path.dirname(llama_cpp.__file__), "..", "**", "models", "templates"), recursive=True)
    except ImportError:
        pass
    dirs += glob.glob("/root/.cache/cairn-peers/src/llama_cpp_python-*/vendor/llama.cpp/models/templates")
    special = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    convs = {k: CONVERSATIONS[k] for k in ["multi", "system", "tools", "unicode"]}
    convs["reasoning"] = {"messages": [{"role": "user", "content": "Why?"},
                                       {"role": "assistant", "content": "Because.", "reasoning_content": "Let me think."},
                                       {"role": "user", "content": "Ok"}]}
    cases, seen = [], set()
    for d in dirs:
        for file in sorted(glob.glob(os.path.join(d, "*.jinja"))):
            with open(file, encoding="utf-8") as f:
                template = f.read()
            if template in seen:
                continue
            seen.add(template)
            for cname, conv in convs.items():
                for agp in (True, False):
                    ctx = {"messages": conv["messages"], "tools": conv.get("tools"), "add_generation_prompt": agp,
                           "special_tokens": special}
                    c = {"name": f"{os.path.basename(file)}/{cname}/{agp}", "template": template, **ctx}
                    try:
                        c["expected"], c["generation_spans"] = render_case(template, ctx)
                    except Exception as e:  # noqa: BLE001
                        c.update(exception(e))
                    cases.append(c)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False)
    print(f"{path}: {len(cases)} cases from {len(seen)} templates, {sum('error' in c for c in cases)} raise")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smollm2-dir", help="SmolLM2 converted by `cairn model import` (tokenizer.json, tokenizer_config.json)")
    ap.add_argument("--gguf", default=SMOLLM2_GGUF)
    ap.add_argument("--corpus", metavar="OUT.json")
    args = ap.parse_args()
    if args.corpus:
        corpus(args.corpus)
        return
    if not args.smollm2_dir:
        ap.error("--smollm2-dir is required")
    texts = write_templates(args.gguf)
    dump = lambda name, obj: json.dump(obj, open(os.path.join(HERE, name), "w", encoding="utf-8"), ensure_ascii=False, indent=1)
    models = model_fixtures(texts, args.smollm2_dir)
    dump("models.json", models)
    constructs = construct_fixtures()
    dump("constructs.json", constructs)
    print(f"models.json: {len(models['cases'])} cases ({sum('error' in c for c in models['cases'])} raise), "
          f"{len(models['spans'])} prefix span sets, {len(models['masks'])} masks; constructs.json: {len(constructs)} "
          f"({sum('error' in c for c in constructs)} raise)")


if __name__ == "__main__":
    main()
