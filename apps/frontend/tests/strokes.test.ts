import { describe, expect, it } from "vitest";
import {
  MAX_POINTS,
  MAX_STROKES,
  type Stroke,
  appendPoint,
  canStartStroke,
  fromWire,
  hasInk,
  renderStrokes,
  toCanvasPoint,
  toDrawing,
} from "../src/lib/strokes";
import { fakePen } from "./fakes";

describe("toCanvasPoint", () => {
  const rect = { left: 10, top: 20, width: 200, height: 200 };

  it("maps the displayed box onto the canvas coordinate space", () => {
    expect(toCanvasPoint(110, 70, rect, 400, 400)).toEqual({ x: 200, y: 100 });
  });

  it("clamps positions outside the canvas to its edges", () => {
    expect(toCanvasPoint(-50, 1000, rect, 400, 400)).toEqual({ x: 0, y: 400 });
    expect(toCanvasPoint(500, 0, rect, 400, 300)).toEqual({ x: 400, y: 0 });
  });

  it("survives a zero-sized box (hidden canvas)", () => {
    const p = toCanvasPoint(15, 25, { left: 10, top: 20, width: 0, height: 0 }, 400, 400);
    expect(p).toEqual({ x: 5, y: 5 });
  });
});

describe("appendPoint", () => {
  it("skips points too close to the previous one", () => {
    const strokes: Stroke[] = [[]];
    expect(appendPoint(strokes, { x: 0, y: 0 })).toBe(true);
    expect(appendPoint(strokes, { x: 1, y: 1 })).toBe(false);
    expect(appendPoint(strokes, { x: 3, y: 0 })).toBe(true);
    expect(strokes[0]).toEqual([
      { x: 0, y: 0 },
      { x: 3, y: 0 },
    ]);
  });

  it("refuses points without a stroke or past the backend's point limit", () => {
    expect(appendPoint([], { x: 1, y: 1 })).toBe(false);
    const full: Stroke[] = [Array.from({ length: MAX_POINTS }, (_, i) => ({ x: i, y: 0 }))];
    expect(appendPoint(full, { x: 0, y: 50 })).toBe(false);
    expect(canStartStroke(full)).toBe(false);
  });

  it("stops new strokes at the backend's stroke limit", () => {
    const many: Stroke[] = Array.from({ length: MAX_STROKES }, () => [{ x: 1, y: 1 }]);
    expect(canStartStroke(many)).toBe(false);
    expect(canStartStroke(many.slice(1))).toBe(true);
  });
});

describe("toDrawing / fromWire", () => {
  it("turns strokes into [[xs, ys], ...], rounded, clamped, without empty strokes", () => {
    const strokes: Stroke[] = [
      [
        { x: 1.234, y: 5.678 },
        { x: 401, y: -3 },
      ],
      [],
      [{ x: 7, y: 8 }],
    ];
    expect(toDrawing(strokes, 400, 400)).toEqual({
      strokes: [
        [
          [1.2, 400],
          [5.7, 0],
        ],
        [[7], [8]],
      ],
      width: 400,
      height: 400,
    });
  });

  it("round-trips", () => {
    const strokes: Stroke[] = [
      [
        { x: 1, y: 2 },
        { x: 3, y: 4 },
      ],
    ];
    expect(fromWire(toDrawing(strokes, 10, 10).strokes)).toEqual(strokes);
  });

  it("knows an empty drawing", () => {
    expect(hasInk([])).toBe(false);
    expect(hasInk([[]])).toBe(false);
    expect(hasInk([[{ x: 0, y: 0 }]])).toBe(true);
  });
});

describe("renderStrokes", () => {
  it("clears, then draws polylines and a dot for a single point, scaled", () => {
    const pen = fakePen();
    const strokes: Stroke[] = [
      [
        { x: 0, y: 0 },
        { x: 100, y: 40 },
      ],
      [{ x: 200, y: 200 }],
    ];
    renderStrokes(pen, strokes, { scale: 0.5, width: 200, height: 200, lineWidth: 10, color: "#111", background: "#fff" });
    expect(pen.calls[0]).toEqual(["clearRect", 0, 0, 200, 200]);
    expect(pen.calls).toContainEqual(["moveTo", 0, 0]);
    expect(pen.calls).toContainEqual(["lineTo", 50, 20]);
    expect(pen.calls).toContainEqual(["arc", 100, 100, 2.5, 0, Math.PI * 2]);
    expect(pen.calls.filter(([c]) => c === "stroke")).toHaveLength(1);
    expect(pen.calls.filter(([c]) => c === "fill")).toHaveLength(1);
    expect(pen.lineWidth).toBe(5);
    expect(pen.lineCap).toBe("round");
  });
});
