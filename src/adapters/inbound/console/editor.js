// The operation editor: a plain textarea (so typing, selection, undo and screen readers work
// as everywhere) whose text is transparent, over a highlighted copy of the same text.

import { highlight } from "./highlight.js";
import { locate } from "./parse.js";

export class CodeEditor {
  /** Wraps `textarea` in place; `onChange(text)` hears every edit, typed or set. */
  constructor(textarea, onChange) {
    this.textarea = textarea;
    this.onChange = onChange;
    this.marks = [];
    this.wrapper = document.createElement("div");
    this.wrapper.className = "code";
    this.view = document.createElement("pre");
    this.view.className = "code-view";
    this.view.setAttribute("aria-hidden", "true");
    textarea.classList.add("code-input");
    textarea.replaceWith(this.wrapper);
    this.wrapper.append(this.view, textarea);
    this.measure = document.createElement("span");
    this.measure.className = "code-measure";
    this.measure.textContent = "0".repeat(20);
    this.wrapper.append(this.measure);
    const changed = () => {
      this.render();
      this.onChange(this.value);
    };
    textarea.addEventListener("input", changed);
    // WebDriver's clear and some autofill tools send only change.
    textarea.addEventListener("change", changed);
    textarea.addEventListener("scroll", () => this.follow());
    this.render();
  }

  get value() {
    return this.textarea.value;
  }

  /** Replaces the whole text (as a new tab or a history entry does), caret at the start. */
  set value(text) {
    this.textarea.value = text;
    this.textarea.setSelectionRange(0, 0);
    this.render();
    this.onChange(text);
  }

  /** Replaces `start`..`end` with `text`, as typing would (so undo can take it back). */
  replace(start, end, text) {
    this.textarea.focus();
    this.textarea.setSelectionRange(start, end);
    // execCommand keeps the browser's undo history; setRangeText is the fallback.
    if (!document.execCommand || !document.execCommand("insertText", false, text)) {
      this.textarea.setRangeText(text, start, end, "end");
      this.textarea.dispatchEvent(new Event("input"));
    }
  }

  setMarks(marks) {
    this.marks = marks;
    this.render();
  }

  render() {
    this.view.replaceChildren(highlight(this.textarea.value, this.marks));
    this.follow();
  }

  follow() {
    this.view.scrollTop = this.textarea.scrollTop;
    this.view.scrollLeft = this.textarea.scrollLeft;
  }

  /** Where, inside the wrapper, the character at `offset` sits: for the completion list. */
  coordinates(offset) {
    const { line, column } = locate(this.textarea.value, offset);
    const style = getComputedStyle(this.textarea);
    const charWidth = this.measure.getBoundingClientRect().width / 20 || 8;
    const lineHeight = parseFloat(style.lineHeight) || 18;
    const left = parseFloat(style.paddingLeft) + parseFloat(style.borderLeftWidth) + (column - 1) * charWidth - this.textarea.scrollLeft;
    const top = parseFloat(style.paddingTop) + parseFloat(style.borderTopWidth) + line * lineHeight - this.textarea.scrollTop;
    return { left, top };
  }
}
