# ruff: noqa: E501  (each reply stays on one line, as the model would write it)
"""Rebuild the reasoning-era rows of tests/data/extraction_cases.json (rows 102 onwards; the first
102 rows are kept as they are).

Each template writes a reply in one model family's style (``style`` in the row) and is applied to
four option sets with a different right letter each; ``HAND`` rows are written one by one;
``UNPARSED`` rows are replies that must stay unparsed (truncated thinking, contradictions,
refusals, values that are no option). Usage: python tests/data/make_extraction_cases.py tests/data/extraction_cases.json
"""

import json
import sys
from pathlib import Path

COLORS = {"A": "red", "B": "green", "C": "blue", "D": "yellow"}
COUNT = {"A": "3", "B": "4", "C": "5", "D": "6"}
SCI = {"A": "Mitochondria", "B": "Nucleus", "C": "Ribosome", "D": "Chloroplast"}
CAPTION = {
    "A": "A dog running on the beach",
    "B": "Two people riding bicycles",
    "C": "A cat sleeping on a sofa",
    "D": "A child flying a kite",
}
THREE = {"A": "increase", "B": "decrease", "C": "stay the same"}
SETS = [(COLORS, "C"), (COUNT, "B"), (SCI, "D"), (CAPTION, "A")]


def others(opts, letter):
    return [k for k in opts if k != letter]


# (style, template) -> template(letter, text, options) returns reply; expected = letter
T = []


def t(style):
    def deco(f):
        T.append((style, f))
        return f

    return deco


@t("qwen3-vl-thinking")
def _(L, x, o):
    a, b = others(o, L)[:2]
    return f"<think>\nOkay, let me look at the image carefully. Option {a} says {o[a]}, which does not fit. Option {b} ({o[b]}) is also unlikely. The image matches {x}.\n</think>\n\n{L}"


@t("qwen3-vl-thinking (template opens <think>)")
def _(L, x, o):
    a = others(o, L)[0]
    return f"Okay, so the question asks about the image. At first I thought {a}, but looking again it is {x}. So the answer is {L}.\n</think>\n\nThe answer is {L}."


@t("qwen3-vl-thinking")
def _(L, x, o):
    a = others(o, L)[1]
    return f"<think>\nHmm, let me check each option. The answer is {a}? No, wait. It's {x}.\n</think>\n\n**Answer: {L}. {x}**"


@t("qwen3 thinking off")
def _(L, x, o):
    return f"<think>\n\n</think>\n\n{L}. {x}"


@t("qwen2.5-vl-instruct")
def _(L, x, o):
    return f"{L}. {x}"


@t("qwen2.5-vl-instruct")
def _(L, x, o):
    return f"The correct answer is {L}. {x}."


@t("qwen2.5-vl-instruct")
def _(L, x, o):
    a = others(o, L)[0]
    return f"The image shows {x.lower()}, not {o[a].lower()}. Therefore, the answer is {L}."


@t("internvl3.5-thinking")
def _(L, x, o):
    a, b, *_ = others(o, L)
    return f"<think>\nFirst I rule out {a} and {b}. The remaining choice {L} matches {x}.\n</think>\n\nAnswer: {L}"


@t("internvl3")
def _(L, x, o):
    return f"{L}"


@t("internvl3")
def _(L, x, o):
    return f"({L}) {x}"


@t("glm-4.1v-thinking")
def _(L, x, o):
    a = others(o, L)[0]
    return f"<think>The user asks which option fits. {a} is wrong because the image does not show {o[a].lower()}. The correct one is {L}.</think><answer>\n<|begin_of_box|>{L}<|end_of_box|>\n</answer>"


@t("glm-4.1v-thinking")
def _(L, x, o):
    return f"<think>Looking at the picture, {x} is right.</think><answer>{L}. {x}</answer>"


@t("glm-4.1v-thinking (special tokens skipped)")
def _(L, x, o):
    a = others(o, L)[2]
    return f"<think>Not {a}. It is {L}.</think>{L}"


@t("kimi-vl-thinking")
def _(L, x, o):
    a = others(o, L)[0]
    return f"◁think▷Let me analyse. Option {a} can't be right. The image fits {x}.◁/think▷The answer is {L}."


@t("kimi-vl-thinking")
def _(L, x, o):
    return f"◁think▷I need to compare the options one by one... {x} fits best.◁/think▷**{L}**"


@t("skywork-r1v / openthoughts")
def _(L, x, o):
    a = others(o, L)[0]
    return f"<|begin_of_thought|>\n\nAlright, so option {a} is out. Thinking more, {x} fits.\n\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\nThe correct option is {L}.\n\n<|end_of_solution|>"


@t("magistral [THINK]")
def _(L, x, o):
    return f"[THINK]Checking: {x} is what the image shows, so {L}.[/THINK]\\boxed{{{L}}}"


@t("plain thinking process")
def _(L, x, o):
    a, b, *_ = others(o, L)
    return f"Thinking Process:\n1. Analyse the image.\n2. Option {a} ({o[a]}) is incorrect.\n3. Option {b} ({o[b]}) is incorrect.\n4. {x} matches.\n\nFinal Answer: {L}"


@t("plain thinking process")
def _(L, x, o):
    a = others(o, L)[0]
    return f"**Thinking Process:**\n\n* The picture shows {x.lower()}.\n* {a} does not match.\n\n**Final Answer:** The final answer is **{L}**."


@t("llava-onevision")
def _(L, x, o):
    return f"{L}."


@t("llava-onevision")
def _(L, x, o):
    return f"{L}"


@t("gemma-3")
def _(L, x, o):
    return f"**{L}. {x}**\n\nThe image clearly shows {x.lower()}."


@t("gemma-3")
def _(L, x, o):
    return f"Based on the image, the correct answer is **{L}. {x}**."


@t("gemma-3")
def _(L, x, o):
    return f"The answer is **({L}) {x}**.\n\nHere's why: the image shows {x.lower()}."


@t("gpt-4o")
def _(L, x, o):
    return f"**Answer: {L}) {x}**\n\n**Explanation:** The image shows {x.lower()}."


@t("gpt-4o")
def _(L, x, o):
    return f"{L}) {x}"


@t("o-series")
def _(L, x, o):
    return f"The image shows {x.lower()}, so the answer is **{L}**."


@t("o-series")
def _(L, x, o):
    a = others(o, L)[0]
    return f"**{L}**\n\nReasoning: {o[a]} can be excluded; {x} fits the image."


@t("deepseek-r1")
def _(L, x, o):
    a = others(o, L)[0]
    return f"<think>\nOkay, let's see. Maybe {a}? No. The image fits {x}, that's option {L}.\n</think>\n\nThe final answer is $\\boxed{{{L}}}$"


@t("deepseek-r1")
def _(L, x, o):
    return f"<think>\nLet me reason step by step.\n</think>\n\n**Final Answer**\n\\[\n\\boxed{{{L}}}\n\\]"


@t("boxed text")
def _(L, x, o):
    return f"The answer is $\\boxed{{\\text{{{L}}}}}$."


@t("boxed text")
def _(L, x, o):
    return f"\\boxed{{\\text{{({L}) {x}}}}}"


@t("boxed option text")
def _(L, x, o):
    return f"So the answer is \\boxed{{{x}}}."


@t("json")
def _(L, x, o):
    return f'{{"answer": "{L}"}}'


@t("json (fenced, with reason)")
def _(L, x, o):
    return f'```json\n{{\n  "answer": "{L}",\n  "reason": "The image shows {x.lower()}."\n}}\n```'


@t("json (python dict)")
def _(L, x, o):
    return f"{{'choice': '{L}'}}"


@t("json (option text)")
def _(L, x, o):
    return f'{{"final_answer": "{x}"}}'


@t("chinese")
def _(L, x, o):
    return f"答案是{L}"


@t("chinese")
def _(L, x, o):
    return f"正确答案：{L}"


@t("chinese")
def _(L, x, o):
    return f"选{L}"


@t("chinese")
def _(L, x, o):
    a = others(o, L)[0]
    return f"根据图片，{a}选项不符合，所以答案是{L}。"


@t("chinese (full-width)")
def _(L, x, o):
    full = chr(ord(L) + 0xFEE0)
    return f"因此，正确选项为（{full}）。"


@t("chinese")
def _(L, x, o):
    return f"最终答案：{L}"


@t("chinese thinking")
def _(L, x, o):
    a = others(o, L)[0]
    return f"<think>\n嗯，先看图片。选项{a}不对。\n</think>\n\n答案：{L}。{x}"


@t("japanese")
def _(L, x, o):
    return f"正解は {L} です。"


@t("japanese")
def _(L, x, o):
    return f"答えは{L}"


@t("korean")
def _(L, x, o):
    return f"정답은 {L}입니다."


@t("korean")
def _(L, x, o):
    return f"정답: {L}"


@t("final answer beats earlier letters")
def _(L, x, o):
    a, b, *_ = others(o, L)
    return f"Option {a} seems plausible at first, and {b} is close. However, looking at the details, {x} is right.\n\nFinal answer: {L}"


@t("final answer beats earlier statements")
def _(L, x, o):
    a = others(o, L)[0]
    return f"My first thought was that the answer is {a}. On reflection that is wrong. Final answer: {L}. Note that option {a} is a distractor."


@t("markdown heading")
def _(L, x, o):
    return f"### Answer\n\n**{L}. {x}**"


# numbers in a sentence: only for COUNT
NUM = [
    ("number in sentence", "There are 4 apples in the image.", COUNT, "B"),
    ("number in sentence", "I count 6 birds on the wire.", COUNT, "D"),
    ("number in sentence", "The picture contains 3 cars.", COUNT, "A"),
    ("number in sentence", "After counting each row, the total is 5.", COUNT, "C"),
    (
        "number in sentence",
        "I counted 2 rows with 3 chairs each, so there are 6 chairs.",
        {"A": "4", "B": "5", "C": "6", "D": "7"},
        "C",
    ),
    (
        "number with unit",
        "The line segment is 12 cm long.",
        {"A": "10 cm", "B": "12 cm", "C": "14 cm", "D": "16 cm"},
        "B",
    ),
    ("number with unit", "The angle measures 45°.", {"A": "30°", "B": "45°", "C": "60°", "D": "90°"}, "B"),
    ("number with unit", "Its price is $15.", {"A": "$10", "B": "$15", "C": "$20", "D": "$25"}, "B"),
    ("number decimal", "The ratio is about 0.5.", {"A": "0.25", "B": "0.5", "C": "0.75", "D": "1"}, "B"),
    ("number in sentence", "不对，图中有5个苹果。", COUNT, "C"),
    ("option text in sentence", "The organelle shown is the chloroplast, which performs photosynthesis.", SCI, "D"),
    ("option text in sentence", "This is a ribosome.", SCI, "C"),
    ("boxed number", "\\boxed{5}", COUNT, "C"),
    ("boxed number", "<think>3 + 1 = 4</think>\n\nThe total is $\\boxed{4}$.", COUNT, "B"),
    ("json number", '{"answer": 6}', COUNT, "D"),
    ("boxed option text", "\\boxed{\\text{stay the same}}", THREE, "C"),
    ("three options", "<think>The value goes down.</think>\n\nB", THREE, "B"),
]
UNPARSED = [
    ("truncated thinking", "<think>\nFirst, I need to look at the options. Option A is red. Option B", COLORS),
    ("truncated thinking", "<think>\nLet me count the apples: 1, 2, 3, 4... so the answer might be B, but", COUNT),
    ("truncated thinking (kimi)", "◁think▷Let me see, the answer might be B, although C is", COLORS),
    (
        "truncated thinking (openthoughts)",
        "<|begin_of_thought|>\n\nAlright, so the question is about the organelle. The answer is probably D",
        SCI,
    ),
    ("truncated thinking (glm)", "<think>The user wants the caption. A looks right because", CAPTION),
    ("truncated thinking (magistral)", "[THINK]Option C fits, so", COLORS),
    ("thinking only, no answer", "<think>The answer is B.</think>", COLORS),
    ("thinking only, no answer", "<think>\nI think it is C.\n</think>\n\n", COLORS),
    ("contradicting boxes", "First \\boxed{A}. Then \\boxed{B}.", COLORS),
    ("contradicting json", '{"answer": "A"} or maybe {"answer": "C"}', COLORS),
    ("chinese contradiction", "答案是A或B", COLORS),
    ("chinese contradiction", "可能选A，也可能选C", COLORS),
    ("chinese refusal", "抱歉，我无法确定图片中的内容。", COLORS),
    ("chinese refusal", "<think>看不到图片。</think>\n\n没有提供图片，无法回答。", COLORS),
    ("japanese refusal", "画像がないため判断できません。", COLORS),
    ("korean refusal", "이미지가 없어서 알 수 없습니다.", COLORS),
    (
        "refusal after thinking",
        "<think>\nThere is no image attached.\n</think>\n\nI cannot determine the answer without the image.",
        COLORS,
    ),
    ("refusal", "I'm sorry, but I can't help with identifying people in images.", CAPTION),
    ("either", "The answer is either B or C.", COLORS),
    ("numbers conflict", "There are 3 apples and 5 oranges.", COUNT),
    ("number not an option", "There are 7 apples in the image.", COUNT),
    ("boxed non-option", "\\boxed{42}", COLORS),
    ("json non-option", '{"answer": "purple"}', COLORS),
    (
        "json no answer key",
        '{"description": "a blue sky over the sea"}',
        {"A": "sea", "B": "forest", "C": "desert", "D": "city"},
    ),
    ("option letter not offered", "<think>Option E fits.</think>\n\nE", COLORS),
    ("boxed letter not offered", "\\boxed{D}", THREE),
    ("none of the options", "<think>None fits.</think>\n\nNone of the options are correct.", COLORS),
    ("several final answers", "Final answer: A, C", COLORS),
    ("description only", "The image shows a busy street at night with many lights.", COLORS),
    ("two options named", "Both red and blue appear in the image.", COLORS),
]


C4 = {"A": "red", "B": "green", "C": "blue", "D": "yellow"}
N4 = {"A": "2", "B": "3", "C": "4", "D": "5"}
REL = {
    "A": "The cat is on the left of the dog",
    "B": "The cat is on the right of the dog",
    "C": "The cat is above the dog",
    "D": "The cat is below the dog",
}
# written one by one (not from a template): mixed styles, self-corrections, distractor letters
HAND = [
    (
        "<think>\nThe bars: 2010 is 3, 2011 is 4. The question asks for 2011.\n</think>\n\nThe value in 2011 is 4.",
        N4,
        "C",
    ),
    ("<think>\nCount: there are 2 on the left and 3 on the right, total 5.\n</think>\n\n**Answer:** D. 5", N4, "D"),
    ("Looking at the image, the cat is on the right of the dog.", REL, "B"),
    ("The cat is on the left of the dog, not on the right.", REL, "A"),
    ("## Step-by-step\n1. Locate the cat.\n2. Locate the dog.\n\n## Answer\nB", REL, "B"),
    ("Answer: B\n\nWait, let me reconsider. Actually the answer is C.", C4, "C"),
    ("The correct answer is **B**, since green covers most of the image. (A) red only appears at the edge.", C4, "B"),
    ("$\\boxed{\\mathrm{B}}$", C4, "B"),
    ("\\boxed{B: green}", C4, "B"),
    ('{"answer": "B", "confidence": 0.7}', C4, "B"),
    ("答案：B（绿色）", C4, "B"),
    ("综上所述，本题选B。", C4, "B"),
    ("正确答案是B选项。", C4, "B"),
    ("The answer is B) green", C4, "B"),
    ("Therefore, the correct choice is (D).", C4, "D"),
    ("I believe the best option here is C – blue.", C4, "C"),
    ("Option C.", C4, "C"),
    ("<think>I'm not sure, between B and C.</think>\n\nI'd go with C.", C4, "C"),
    ("The object is red and yellow.", C4, None),
    ("Neither; the image shows purple.", C4, None),
    ("B is incorrect; the answer is C", C4, "C"),
    ("The sky is blue and the grass is green.", C4, None),
    ("There are 4 birds, and 2 of them are flying.", N4, None),
    ("The final answer is 4.", N4, "C"),
    ("Final Answer: 4", N4, "C"),
    ("回答：C", C4, "C"),
    ("Selected answer: D", C4, "D"),
    ("**Final Answer**\n\nThe answer is (B) green.", C4, "B"),
    ("Answer: **C. blue**\n\nNote: D is yellow, which is incorrect.", C4, "C"),
    # explanations after the answer name other letters: they describe, they do not answer
    ("**B. green**\n\nOption A is incorrect because the grass is not red.", C4, "B"),
    ("B\n\nExplanation: option A (red) does not match.", C4, "B"),
    ("The answer is B. Option A is red, which is wrong.", C4, "B"),
    ("B. green\n\nWhy not the others:\n- A: red is absent\n- C: blue is the sky\n- D: no yellow", C4, "B"),
    ("**Answer: B**\n\nA is wrong since red is absent.", C4, "B"),
    ("Answer: B. Choice A would need red.", C4, "B"),
    ("I pick B. I would not choose A.", C4, "B"),
    ("B is the answer; option C is close but wrong.", C4, "B"),
    ("<think>..</think>\n\n**B**\n\n- Option A: incorrect\n- Option C: incorrect", C4, "B"),
    ("the sky is blue, I think. Option A is red.", C4, None),
    ("Option C is correct.", C4, "C"),
    ("I think option D is the right answer.", C4, "D"),
    ("I don't think the answer is A; it's C", C4, None),
    ("Vitamin C is the best source here, so the answer is A.", C4, "A"),
    ("Option B is incorrect. Option D is correct.", C4, "D"),
    ("Selected option: C", C4, "C"),
    ("The correct answer is not A, it is C.", C4, "C"),
    ("**(B) green**\n\n*   **(A) red:** The image has no red.\n*   **(C) blue:** Only the sky.", C4, "B"),
    ("Based on the image, B is correct because the field is green.", C4, "B"),
]


# ---------------------------------------------------------------- issue 31: styles no earlier set covered
# Written for this table (in our own words, after the kinds of replies seen in public evaluation logs and
# issue threads): corrections, check-lists, values, ordinals, other scripts and languages, structured replies,
# refusal-like option texts, display math, quoted letters; and replies that commit to nothing.
N31 = []


def n31(style):
    def deco(f):
        N31.append((style, f))
        return f

    return deco


@n31("correction (wait, no)")
def _(L, x, o):
    return f"Final answer: {others(o, L)[0]} — wait, no, {L}."


@n31("correction (I mean)")
def _(L, x, o):
    return f"{others(o, L)[1]}. Sorry, I mean {L}."


@n31("correction (struck out)")
def _(L, x, o):
    return f"The answer is ~~{others(o, L)[0]}~~ {L}."


@n31("correction (struck out, markdown)")
def _(L, x, o):
    return f"**Answer:** ~~({others(o, L)[2]})~~ **({L}) {x}**"


@n31("correction (labelled)")
def _(L, x, o):
    return f"Answer: {others(o, L)[0]}\n\nCorrection: the answer is {L} ({x})."


@n31("correction (make that)")
def _(L, x, o):
    return f"I'll say {others(o, L)[1]}. Actually, make that {L}."


@n31("correction (russian)")
def _(L, x, o):
    return f"Ответ: {others(o, L)[0]}. Нет, подождите, правильный ответ {L}."


@n31("correction (chinese)")
def _(L, x, o):
    return f"答案是{others(o, L)[0]}。不对，应该是{L}。"


@n31("correction (on second thought)")
def _(L, x, o):
    return f"I think it's {others(o, L)[0]}. On second thought, it's {L}, since the image shows {x.lower()}."


@n31("check-list (emoji)")
def _(L, x, o):
    return "\n".join(f"{k}. {v} {'✅' if k == L else '❌'}" for k, v in o.items())


@n31("check-list (words)")
def _(L, x, o):
    return "Let me check each option:\n" + "\n".join(
        f"- Option {k}: {'correct' if k == L else 'incorrect'}" for k in o)


@n31("check-list (inline marks)")
def _(L, x, o):
    return " ".join(f"({k}) {'✔' if k == L else '✘'}" for k in o)


@n31("check-list (arrows)")
def _(L, x, o):
    return "\n".join(f"{k} → {'✓ matches the image' if k == L else '✗ not shown'}" for k in o)


@n31("ordinal")
def _(L, x, o):
    return f"The {['first', 'second', 'third', 'fourth'][list(o).index(L)]} option."


@n31("ordinal (one)")
def _(L, x, o):
    return f"I'd go with the {['first', 'second', 'third', 'fourth'][list(o).index(L)]} one."


@n31("ordinal (option number)")
def _(L, x, o):
    return f"Option {list(o).index(L) + 1} is correct." if o is not COUNT else f"Option {L} is correct."


@n31("ordinal (russian)")
def _(L, x, o):
    return f"Правильный ответ — {['первый', 'второй', 'третий', 'четвёртый'][list(o).index(L)]} вариант."


@n31("ordinal (chinese)")
def _(L, x, o):
    return f"答案是第{'一二三四'[list(o).index(L)]}个选项。"


@n31("russian")
def _(L, x, o):
    return f"Правильный ответ: {L}."


@n31("russian")
def _(L, x, o):
    return f"Я выбираю вариант {L}, потому что на изображении видно: {x.lower()}."


@n31("arabic")
def _(L, x, o):
    return f"الإجابة الصحيحة هي {L}"


@n31("arabic")
def _(L, x, o):
    return f"الإجابة: ({L})"


@n31("hindi")
def _(L, x, o):
    return f"सही उत्तर {L} है।"


@n31("hindi")
def _(L, x, o):
    return f"उत्तर: {L}"


@n31("korean")
def _(L, x, o):
    return f"최종 답: {L}"


@n31("japanese")
def _(L, x, o):
    return f"最終的な答えは{L}です。"


@n31("portuguese")
def _(L, x, o):
    return f"A resposta correta é a alternativa {L}."


@n31("portuguese")
def _(L, x, o):
    return f"Resposta: {L}) {x}"


@n31("turkish")
def _(L, x, o):
    return f"Doğru cevap {L}'dir."


@n31("turkish")
def _(L, x, o):
    return f"Cevap: {L} şıkkı"


@n31("vietnamese")
def _(L, x, o):
    return f"Đáp án đúng là {L}."


@n31("vietnamese")
def _(L, x, o):
    return f"Câu trả lời: {L}. {x}"


@n31("spanish")
def _(L, x, o):
    return f"La respuesta correcta es la {L}."


@n31("french")
def _(L, x, o):
    return f"La bonne réponse est {L}."


@n31("german")
def _(L, x, o):
    return f"Die richtige Antwort ist {L}."


@n31("tool call (escaped arguments)")
def _(L, x, o):
    return json.dumps({"name": "submit_answer", "arguments": json.dumps({"answer": L})})


@n31("tool call (tagged)")
def _(L, x, o):
    return f'<tool_call>\n{{"name": "select_option", "arguments": {{"option": "{L}"}}}}\n</tool_call>'


@n31("tool call (function syntax)")
def _(L, x, o):
    return f'submit_answer(answer="{L}")'


@n31("tool call (openai list)")
def _(L, x, o):
    call = {"type": "function", "function": {"name": "answer", "arguments": json.dumps({"choice": L})}}
    return json.dumps([call])


@n31("xml tag")
def _(L, x, o):
    return f"<reasoning>The picture shows {x.lower()}.</reasoning>\n<answer>{L}</answer>"


@n31("xml tag")
def _(L, x, o):
    return f"<final_answer>({L}) {x}</final_answer>"


@n31("xml tag (sentence)")
def _(L, x, o):
    return f"<answer>\nThe answer is {L}.\n</answer>"


@n31("markdown table")
def _(L, x, o):
    return f"| Question | Answer |\n|---|---|\n| What does the image show? | {L} |"


@n31("markdown table (verdicts)")
def _(L, x, o):
    return "| Option | Verdict |\n|---|---|\n" + "\n".join(f"| {k} | {'✅' if k == L else '❌'} |" for k in o)


@n31("markdown table (key/value)")
def _(L, x, o):
    return f"| Field | Value |\n|---|---|\n| Reasoning | the image shows {x.lower()} |\n| Answer | {L} |"


@n31("display math")
def _(L, x, o):
    return f"\\[ \\text{{Answer: }} \\mathbf{{{L}}} \\]"


@n31("display math")
def _(L, x, o):
    return f"Therefore:\n$$\\textbf{{({L})}}$$"


@n31("display math (inline)")
def _(L, x, o):
    return f"The answer is \\( \\text{{{L}}} \\)."


@n31("quoted letter")
def _(L, x, o):
    return f'The answer is "{L}".'


@n31("quoted letter")
def _(L, x, o):
    return f"I'd pick '{L}' here."


@n31("quoted letter (guillemets)")
def _(L, x, o):
    return f"Ответ: «{L}»"


@n31("cyrillic / greek look-alike")
def _(L, x, o):
    return "Answer: " + {"A": "А", "C": "С", "B": "Β"}.get(L, L)  # Cyrillic А, С; Greek Β


TIME = {"A": "30 minutes", "B": "1 hour", "C": "90 minutes", "D": "2 hours"}
EGGS = {"A": "10", "B": "12", "C": "14", "D": "16"}
FRAC = {"A": "1/4", "B": "1/2", "C": "3/4", "D": "1"}
PCT = {"A": "25%", "B": "50%", "C": "75%", "D": "100%"}
LEN = {"A": "1 m", "B": "1.5 m", "C": "2 m", "D": "2.5 m"}
MONEY = {"A": "$5", "B": "$10", "C": "$15", "D": "$20"}
YESNO = {"A": "Yes", "B": "No", "C": "Cannot be determined", "D": "None of the above"}
# (style, reply, options, expected[, finish_reason])
N31_HAND = [
    ("value (number word)", "There are twelve eggs in the carton.", EGGS, "B"),
    ("value (dozen)", "I can see a dozen eggs.", EGGS, "B"),
    ("value (number word)", "Sixteen eggs fill the tray.", EGGS, "D"),
    ("value (number word)", "I count ten of them.", EGGS, "A"),
    ("value (number word, russian)", "На картинке двенадцать яиц.", EGGS, "B"),
    ("value (number word, portuguese)", "Há doze ovos na caixa.", EGGS, "B"),
    ("value (chinese numeral)", "图中有四个苹果。", COUNT, "B"),
    ("value (number word)", "Five apples are on the table.", COUNT, "C"),
    ("value (fraction word)", "Half of the pie is left.", FRAC, "B"),
    ("value (percent for fraction)", "Exactly 50% of the pie remains.", FRAC, "B"),
    ("value (fraction word)", "Three quarters of the bar is shaded.", PCT, "C"),
    ("value (decimal for percent)", "The shaded share is 0.25 of the area.", PCT, "A"),
    ("value (fraction for percent)", "It is filled to 1/2.", PCT, "B"),
    ("value (unit conversion)", "The pole is about 150 cm tall.", LEN, "B"),
    ("value (unit conversion)", "It measures 200 centimeters.", LEN, "C"),
    ("value (unit conversion)", "The ribbon is 2500 mm long.", LEN, "D"),
    ("value (money in words)", "It costs fifteen dollars.", MONEY, "C"),
    ("value (money in words)", "The ticket is ten bucks.", MONEY, "B"),
    ("value (money)", "The total comes to 20 dollars.", MONEY, "D"),
    ("value (money in words)", "Five dollars is the price on the tag.", MONEY, "A"),
    ("value (time)", "The trip takes 60 minutes.", TIME, "B"),
    ("value (time)", "It lasts 120 minutes in all.", TIME, "D"),
    ("value (time)", "About half an hour. 30 minutes.", TIME, "A"),
    ("refusal-like option", "Cannot be determined", YESNO, "C"),
    ("refusal-like option", "None of the above.", YESNO, "D"),
    ("refusal-like option", "The answer is: None of the above", YESNO, "D"),
    ("refusal-like option", "Based on the image alone, it cannot be determined.", YESNO, "C"),
    ("refusal-like option", "**Cannot be determined** — the picture is too dark.", YESNO, "C"),
    ("refusal-like option", "D. None of the above", YESNO, "D"),
    ("refusal (no such option)", "It cannot be determined from this image.", C4, None),
    ("refusal (no such option)", "None of the above.", C4, None),
    ("cut by the token limit, committed", "B. The image shows a field of green grass with a few", C4, "B", "length"),
    ("cut by the token limit, committed", "The answer is C because the sky in the upper part of the", C4, "C", "length"),
    ("cut by the token limit, committed", "Final answer: D. To explain why, the", C4, "D", "length"),
    ("cut by the token limit, committed", '{"answer": "A", "reason": "the car is', C4, "A", "length"),
    ("cut by the token limit, committed", "\\boxed{C} since the sky", C4, "C", "length"),
    ("cut by the token limit, not committed", "Looking at the options, A is red and B is green, while C", C4, None, "length"),
    ("cut by the token limit, not committed", "Let me compare each option with the image, starting with option D", C4,
     None, "length"),
    ("cut by the token limit, not committed", "The sky is clearly visible. D", C4, None, "length"),
    ("cut by the token limit, not committed", "Let me look at the image. The sky is blue", C4, None, "length"),
    ("cut by the token limit, not committed", "Step 1: count the apples. There are 4", N4, None, "length"),
    ("cut by the token limit, not committed", "Option B says green, which matches. So", C4, None, "length"),
    ("not cut: the same reply reads", "The sky is clearly visible. D", C4, "D", "stop"),
    ("statement (closest match)", "The closest match is option D", C4, "D"),
    ("several questions", "1. B\n2. D", C4, None),
    ("several questions", "Q1: A\nQ2: C", C4, None),
    ("several questions", "For question 1 the answer is B; for question 2 it is D.", C4, None),
    ("several questions", "The first question: B. The second question: D.", C4, None),
    ("several questions", "Question 1 - (A)\nQuestion 2 - (A)", C4, None),
    ("two letters offered (russian)", "Ответ: A или C", C4, None),
    ("two letters offered (arabic)", "الإجابة: A أو B", C4, None),
    ("two letters offered (hindi)", "उत्तर: B या C", C4, None),
    ("two letters offered (korean)", "정답은 A 또는 C", C4, None),
    ("two letters offered (japanese)", "答えはBかDです", C4, None),
    ("two letters offered (portuguese)", "A resposta é B ou C.", C4, None),
    ("two letters offered (turkish)", "Cevap A veya D.", C4, None),
    ("two letters offered (vietnamese)", "Đáp án là B hoặc C.", C4, None),
    ("two letters offered (spanish)", "La respuesta es A o D.", C4, None),
    ("two letters offered (german)", "Die Antwort ist B oder C.", C4, None),
    ("two letters offered", "A or B is correct.", C4, None),
    ("retracted", "B. Actually, I'm not sure.", C4, None),
    ("retracted", "The answer is C. Scratch that — I can't tell from this image.", C4, None),
    ("retracted", "A... no, I take it back; I cannot tell.", C4, None),
    ("retracted", "Answer: D. Please disregard that, the image did not load.", C4, None),
    ("retracted", "Ответ: B. Нет, подождите, не знаю.", C4, None),
    ("cyrillic look-alike (ambiguous)", "Ответ: В", C4, None),
    ("cyrillic look-alike (ambiguous)", "Ответ: Е", {**C4, "E": "purple", "F": "white"}, None),
    ("greek look-alike", "Απάντηση: Β", C4, "B"),
    ("cyrillic look-alike", "Правильный ответ: С", C4, "C"),
    ("ordinal (last)", "The answer is the last option.", C4, "D"),
    ("ordinal (last, three options)", "I'd go with the last one.", THREE, "C"),
    ("ordinal (option number equals an option's value)", "Option 3 is correct.", COUNT, None),
    ("ordinal (weighed)", "The first option is wrong; the third one is right.", C4, "C"),
    ("several boxes after a correction", "First \\boxed{A}. Hmm, actually \\boxed{B}.", C4, "B"),
    ("markdown table (several rows)", "| Q | Answer |\n|---|---|\n| 1 | A |\n| 2 | C |", C4, None),
    ("xml tag (two answers)", "<answer>A</answer> <answer>C</answer>", C4, None),
    ("tool call (two calls)", 'submit_answer(answer="A")\nsubmit_answer(answer="B")', C4, None),
    ("check-list (two ticks)", "A ✅\nB ❌\nC ✅\nD ❌", C4, None),
    ("display math (two letters)", "\\[ \\mathbf{A} \\text{ or } \\mathbf{B} \\]", C4, None),
    ("quoted letters (two)", "Either 'A' or 'C'.", C4, None),
    ("value (two option values)", "There are twelve eggs and ten cups.", EGGS, None),
    ("value (no option's value)", "I count eleven eggs.", EGGS, None),
    ("value (money, no option)", "It costs seven dollars.", MONEY, None),
]
# written after failure reports in public evaluation repositories' issue threads (AGIEval, inspect_ai,
# NeMo-Skills, frontier-evals, omlx, ds4, paper-qa): the reply shapes they describe, in our own words
ENERGY = {"A": "1.1 MeV", "B": "3.3 MeV", "C": "5.5 MeV", "D": "7.7 MeV"}
TEN = {k: v for k, v in zip("ABCDEFGHIJ", ["an integral", "a sum", "a limit", "a product", "a series", "a root",
                                          "a ratio", "a mean", "a mode", "a median"])}
FIVE = {"A": "red", "B": "green", "C": "blue", "D": "yellow", "E": "purple"}
N31_PUBLIC = [
    ("选项 (B) $3.3\\mathrm{MeV}$。", ENERGY, "B"),
    ("Answer: **D**", C4, "D"),
    ("I considered (A), but it is incorrect. Final answer: D.", C4, "D"),
    ("The correct answer is d.", C4, "D"),
    ("ANSWER: None of the above", YESNO, "D"),
    ("ANSWER: Don't know", C4, None),
    ("ANSWER: I don't know", C4, None),
    ("The relation is \\boxed{\\langle H\\rangle \\ll \\Delta E}, so the energy spread dominates.\n\n**Answer: D**", FIVE, None),
    ("The answer is B. Note that A is a common distractor.", C4, "B"),
    ("ANSWER IS D. A is incorrect.", C4, "D"),
    ("The answer is C because I computed the integral.", TEN, "C"),
    ("Answer: A\nAfter checking the reasoning, I need to correct this.\nAnswer: B", C4, "B"),
    ("Answer: A, C\nOn second thought: Answer: B", C4, "B"),
    ("ANSWER: b", C4, "B"),
    ("Answer: this asks which one is a colour of the sky\n...\nANSWER: C", C4, "C"),
    ("Answer: It is not B, the answer is D", C4, "D"),
    ("Answer: rules out C, leaving D", C4, None),
    ("Answer: D, not B", C4, "D"),
    ("Answer: I think it is C", C4, "C"),
    ("Looking at the options, none of them is 14, so I pick the closest.\n\nE", FIVE, "E"),
    ("The single letter answer, based on the chart, is:\n\nC", C4, "C"),
    ("Among A, B, C and D the only colour of grass is B.", C4, None),
    ("It's between (A) and (C); I'll say (C).", C4, "C"),
    ("Both A and C look plausible.", C4, None),
    ("**Answer: (C)** — although (A) was tempting.", C4, "C"),
    ("The answer is (C), not (A).", C4, "C"),
    ("Answer: C.\nConfidence: 0.8", C4, "C"),
    ("Answer: C (blue)\nReason: the sky fills the upper half.", C4, "C"),
    ("The image shows a blue sky. Answer: C) blue", C4, "C"),
    ("Choice: (E) purple", FIVE, "E"),
]


# a blind batch: 50 replies written in styles not seen before and run once before any change to the
# extractor (it then read 33 of 43 answerable, 0 wrong letters, 3 guesses); kept as rows once read right
N31_BLIND = [
 ("The image depicts a blue sky; hence option (c).", C4, "C"), ("Ans: B", C4, "B"), ("Correct option → C", C4, "C"),
 ("My pick: D.", C4, "D"), ("➡️ B", C4, "B"), ("B ✅", C4, "B"), ("Option B is the right one.", C4, "B"),
 ("I'm going with C on this one.", C4, "C"), ("It's definitely not A or B. C it is.", C4, "C"), ("Either way it's C.", C4, "C"),
 ("The options A and B can be eliminated, leaving C and D. Between those, D.", C4, "D"), ("C? Yes, C.", C4, "C"),
 ("Final: B", C4, "B"), ("Result: (A)", C4, "A"), ("My answer would be option D, yellow.", C4, "D"), ("Answer — B", C4, "B"),
 ("Answer = C", C4, "C"), ("正确的是B。", C4, "B"), ("我认为是C。", C4, "C"), ("Câu đúng là B.", C4, "B"),
 ("Doğru seçenek: D", C4, "D"), ("Resposta certa: letra C", C4, "C"), ("الجواب هو B", C4, "B"), ("उत्तर है: D", C4, "D"),
 ("정답은 (C)번입니다.", C4, "C"), ("答えは「B」です。", C4, "B"), ("Ответ: вариант B", C4, "B"),
 ("The number of apples is seven.", COUNT, None), ("I count six apples in total.", COUNT, "D"), ("Roughly half.", FRAC, "B"),
 ("Twenty dollars.", MONEY, "D"), ("It's 1.5 metres tall.", LEN, "B"),
 ("A) red\nB) green\nC) blue\nD) yellow\n\nAnswer: C", C4, "C"),
 ("Options considered:\n- A (red): no\n- B (green): no\n- C (blue): yes\n- D (yellow): no", C4, "C"),
 ("Not sure between B and D.", C4, None), ("B, or maybe D.", C4, None), ("1) C  2) A", C4, None),
 ("The answer to question 3 is B.", C4, "B"), ("B\nD", C4, None), ("I'd rather not answer.", C4, None),
 ("Answer: (B) ... actually, hmm, still (B).", C4, "B"), ("<choice>C</choice>", C4, "C"), ("```\nC\n```", C4, "C"),
 ("**Correct Answer:** ~~A~~ → **C**", C4, "C"), ("The answer is the one with the blue colour.", C4, "C"),
 ("Choose: the second option", C4, "B"), ("Answer: C. Wait, let me double-check... yes, C.", C4, "C"),
 ("It's C, no wait, it's D.", C4, "D"), ("D — but I'm not certain.", C4, "D"), ("The answer is B (or possibly C).", C4, None),
]


# a second blind batch, written and run once after the first one's changes (33 of 35 answerable read,
# 0 wrong letters, 2 guesses), then kept as rows once read right
YN = {"A": "Yes", "B": "No"}
N31_BLIND2 = [
 ("Solution: B", C4, "B"), ("Pick → D", C4, "D"), ("The best fit here: (A).", C4, "A"),
 ("Looks like C to me.", C4, "C"), ("I'd lean towards B.", C4, "B"), ("Most likely answer: D", C4, "D"),
 ("=> C", C4, "C"), ("✔️ C", C4, "C"), ("C is my final choice.", C4, "C"), ("Definitely B!", C4, "B"),
 ("Answer:\n- B", C4, "B"), ("> **Answer**: C", C4, "C"), ("`B`", C4, "B"), ("[B]", C4, "B"),
 ("Correct: D", C4, "D"), ("Option (D) yellow is correct.", C4, "D"), ("The right choice would be A.", C4, "A"),
 ("I believe the answer is likely B.", C4, "B"), ("Well, it's got to be C.", C4, "C"),
 ("The correct response is C.", C4, "C"), ("Respuesta: B", C4, "B"), ("Réponse : C", C4, "C"),
 ("Antwort: D", C4, "D"), ("Cevabım B.", C4, "B"), ("Ответ — A.", C4, "A"), ("答案为：D", C4, "D"),
 ("正解：A", C4, "A"), ("답: B", C4, "B"), ("Đáp án: D", C4, "D"), ("الإجابة هي (C)", C4, "C"),
 ("The organelle is a nucleus.", SCI, "B"), ("Yes.", YN, "A"), ("No, it is not.", YN, "B"),
 ("There are five apples and I am sure.", COUNT, "C"), ("I see 4.", COUNT, "B"),
 ("I cannot decide between C and D.", C4, None), ("Could be A, could be B.", C4, None),
 ("A/B", C4, None), ("Answers: 1-A, 2-C", C4, None), ("B... or D? Hard to say.", C4, None),
 ("Not A, not B, not C.", C4, None), ("The answer is not listed.", C4, None),
 ("I'd say B. Hmm, no, I really can't tell.", C4, None), ("Let me think step by step. First, the colour", C4, None),
]


# a third blind batch, written and run once after the second one's changes (24 of 27 answerable read,
# 0 wrong letters, 1 guess: a reply ending on "but" with no finish_reason), then kept as rows
N31_BLIND3 = [
 ("To answer this, I look at the sky region, which is clearly blue. Among the options, that corresponds to C.", C4, "C"),
 ("Step 1: identify the object. Step 2: compare with the options. The object matches option B.", C4, "B"),
 ("After examining the picture, my conclusion is (D).", C4, "D"),
 ("The colour in question is yellow, so I choose the fourth option.", C4, "D"),
 ("The image shows several apples; counting them gives 5. Hence C.", COUNT, "C"),
 ("Given the structure with a double membrane and cristae, this is the mitochondrion (A).", SCI, "A"),
 ("Conclusion: B", C4, "B"),
 ("Therefore the correct option must be A.", C4, "A"),
 ("The only plausible option is C.", C4, "C"),
 ("Hence, (B) is the answer.", C4, "B"),
 ("The answer can't be A or B, since neither colour appears. It is D.", C4, "D"),
 ("My final response: C", C4, "C"),
 ("Selected: B", C4, "B"),
 ("I would answer D.", C4, "D"),
 ("So we go with B.", C4, "B"),
 ("Overall, C best describes the image.", C4, "C"),
 ("Option C (blue) — this matches the sky.", C4, "C"),
 ("C: blue. The sky dominates the frame.", C4, "C"),
 ("The answer is: (D) yellow", C4, "D"),
 ("Ответ будет B.", C4, "B"),
 ("Resposta correta: D.", C4, "D"),
 ("Jawaban: C", C4, "C"),
 ("Lösung: B", C4, "B"),
 ("正确选项是 A。", C4, "A"),
 ("答: C", C4, "C"),
 ("There appear to be six apples.", COUNT, "D"),
 ("It is a ribosome, the site of protein synthesis.", SCI, "C"),
 ("A or C — I can't decide.", C4, None),
 ("Could you provide the image? Without it I cannot answer.", C4, None),
 ("The image is too blurry to tell.", C4, None),
 ("Q1 → B; Q2 → D", C4, None),
 ("The answer is B. Wait, I misread the question; I'm not sure anymore.", C4, None),
 ("Red and blue are both present.", C4, None),
 ("I think it is either C or D.", C4, None),
 ("Let me analyze option A first. Red appears in the corner, but", C4, None),
]


# a fourth blind batch, written and run once after the third one's changes (15 of 22 answerable read,
# 0 wrong letters, 2 guesses), kept as rows once read right; two replies that paraphrase an option's
# text ("A cat is sleeping on a sofa" for "A cat sleeping on a sofa") are left out: option texts are
# matched as written, not paraphrased, so they stay unparsed
CAP = CAPTION
N31_BLIND4 = [
 ("Based on my analysis, the most fitting choice is C.", C4, "C"),
 ("Final verdict: (B)", C4, "B"),
 ("The response is D.", C4, "D"),
 ("In conclusion, option A.", C4, "A"),
 ("I'm confident the answer is (A).", C4, "A"),
 ("Answer (C).", C4, "C"),
 ("#### B", C4, "B"),
 ("<|answer|>D<|/answer|>", C4, "D"),
 ("[ANSWER] C [/ANSWER]", C4, "C"),
 ("Thus: B.", C4, "B"),
 ("It must be the fourth one.", C4, "D"),
 ("Option three.", C4, "C"),
 ("There are exactly four of them.", COUNT, "B"),
 ("Count: 6", COUNT, "D"),
 ("Правильный вариант — Б.", C4, None),
 ("Odpowiedź: B", C4, "B"),
 ("答案选D。", C4, "D"),
 ("正しい答えはAです。", C4, "A"),
 ("정답은 C번", C4, "C"),
 ("The answer is B or maybe C, hard to say.", C4, None),
 ("Probably A, but it could also be D.", C4, None),
 ("A: 30%, B: 50%, C: 15%, D: 5%", C4, None),
 ("Options B and C are equally likely.", C4, None),
 ("I need more context to answer.", C4, None),
 ("Answer: B\nAnswer: D", C4, None),
 ("The picture shows a red car and a yellow taxi.", C4, None),
 ("Hmm, B? Or D? I'll go with D.", C4, "D"),
 ("First guess B; final guess C.", C4, "C"),
]


def build():
    cases = []
    for style, f in T:
        for opts, L in SETS:
            cases.append({"response": f(L, opts[L], opts), "options": opts, "expected": L, "style": style})
    for style, resp, opts, L in NUM:
        cases.append({"response": resp, "options": opts, "expected": L, "style": style})
    for resp, opts, L in HAND:
        cases.append({"response": resp, "options": opts, "expected": L, "style": "hand-written (mixed)"})
    for style, resp, opts in UNPARSED:
        cases.append({"response": resp, "options": opts, "expected": None, "style": style})
    for style, f in N31:
        for opts, L in SETS:
            cases.append({"response": f(L, opts[L], opts), "options": opts, "expected": L, "style": style})
    for resp, opts, L in N31_BLIND4:
        cases.append({"response": resp, "options": opts, "expected": L, "style": "fourth blind batch"})
    for resp, opts, L in N31_BLIND3:
        cases.append({"response": resp, "options": opts, "expected": L, "style": "third blind batch"})
    for resp, opts, L in N31_BLIND2:
        cases.append({"response": resp, "options": opts, "expected": L, "style": "second blind batch"})
    for resp, opts, L in N31_BLIND:
        cases.append({"response": resp, "options": opts, "expected": L, "style": "blind batch"})
    for resp, opts, L in N31_PUBLIC:
        cases.append({"response": resp, "options": opts, "expected": L, "style": "after public failure reports"})
    for style, resp, opts, L, *finish in N31_HAND:
        case = {"response": resp, "options": opts, "expected": L, "style": style}
        if finish:
            case["finish_reason"] = finish[0]  # why generation stopped ("length": cut by the token budget)
        cases.append(case)
    return cases


if __name__ == "__main__":
    path = Path(sys.argv[1])
    old = json.loads(path.read_text())[:102]
    new = build()
    path.write_text(json.dumps(old + new, indent=1, ensure_ascii=False) + "\n")
    print(len(old), "+", len(new), "=", len(old) + len(new))
