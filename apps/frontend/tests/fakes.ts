// Test doubles: a recording 2D context per canvas (jsdom has no canvas) and pointer helpers.
import { vi } from "vitest";
import type { Pen } from "../src/lib/strokes";

export interface FakePen extends Pen {
  calls: [string, ...number[]][];
}

export function fakePen(): FakePen {
  const calls: [string, ...number[]][] = [];
  const rec =
    (name: string) =>
    (...args: number[]) => {
      calls.push([name, ...args]);
    };
  return {
    calls,
    lineWidth: 1,
    lineCap: "butt",
    lineJoin: "miter",
    strokeStyle: "#000",
    fillStyle: "#000",
    clearRect: rec("clearRect"),
    fillRect: rec("fillRect"),
    beginPath: rec("beginPath"),
    moveTo: rec("moveTo"),
    lineTo: rec("lineTo"),
    arc: rec("arc"),
    stroke: rec("stroke"),
    fill: rec("fill"),
  };
}

/** Gives every canvas its own fake context; returns the lookup. */
export function installFakeCanvas(): (canvas: Element) => FakePen {
  const pens = new WeakMap<Element, FakePen>();
  const get = (canvas: Element): FakePen => {
    let pen = pens.get(canvas);
    if (!pen) {
      pen = fakePen();
      pens.set(canvas, pen);
    }
    return pen;
  };
  vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockImplementation(function (this: HTMLCanvasElement) {
    return get(this) as unknown as CanvasRenderingContext2D;
  } as unknown as typeof HTMLCanvasElement.prototype.getContext);
  return get;
}

/** The canvas is displayed at `size` CSS px (so pointer coordinates get scaled). */
export function placeCanvas(canvas: Element, size: number, left = 10, top = 20): void {
  vi.spyOn(canvas, "getBoundingClientRect").mockReturnValue({
    left,
    top,
    width: size,
    height: size,
    right: left + size,
    bottom: top + size,
    x: left,
    y: top,
    toJSON: () => ({}),
  });
}

/** A person's pen stroke: down, moves along `points` (client px), up. */
export function drawStroke(canvas: Element, points: [number, number][], pointerId = 1): void {
  const [first, ...rest] = points;
  if (!first) return;
  const ev = (type: string, [x, y]: [number, number]) =>
    new PointerEvent(type, { pointerId, clientX: x, clientY: y, button: 0, bubbles: true, cancelable: true });
  canvas.dispatchEvent(ev("pointerdown", first));
  for (const p of rest) canvas.dispatchEvent(ev("pointermove", p));
  canvas.dispatchEvent(ev("pointerup", rest[rest.length - 1] ?? first));
}
