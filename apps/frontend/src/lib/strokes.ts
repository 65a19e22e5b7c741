// Pure stroke math: pointer positions -> clamped canvas points -> the serve API's `[[xs, ys], ...]`.
// No DOM and no canvas here, so all of it is unit-tested under jsdom.

import { DRAWING_LIMITS } from "../generated/drawing-limits";
import type { PredictMessage } from "../generated/ws-client-message";

export interface Point {
  x: number;
  y: number;
}

/** One pen-down..pen-up path, in canvas coordinates. */
export type Stroke = Point[];

/** A stroke as the serve API wants it: `[xs, ys]` (generated from guessme_contracts.messages). */
export type WireStroke = NonNullable<PredictMessage["strokes"]>[number];

/** What `/predict`, `/ws` and `/rounds` take, in the stroke form the game draws (the API also takes pixels). */
export type Drawing = { [K in "strokes" | "width" | "height"]-?: NonNullable<PredictMessage[K]> };

/** The server's drawing limits (guessme_contracts.limits): staying under them keeps every request valid. */
export const { MAX_STROKES, MAX_POINTS } = DRAWING_LIMITS;
/** Points closer than this (canvas px) to the previous one add nothing visible: skip them. */
export const MIN_POINT_DISTANCE = 2;

export interface Rect {
  left: number;
  top: number;
  width: number;
  height: number;
}

export function clamp(value: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, value));
}

/** A pointer position (client px) -> canvas coordinates, clamped inside the canvas. */
export function toCanvasPoint(
  clientX: number,
  clientY: number,
  rect: Rect,
  width: number,
  height: number,
): Point {
  // The canvas is scaled by CSS (responsive layout): map the displayed box onto its coordinate space.
  const sx = rect.width > 0 ? width / rect.width : 1;
  const sy = rect.height > 0 ? height / rect.height : 1;
  return {
    x: clamp((clientX - rect.left) * sx, 0, width),
    y: clamp((clientY - rect.top) * sy, 0, height),
  };
}

export function countPoints(strokes: readonly Stroke[]): number {
  return strokes.reduce((n, s) => n + s.length, 0);
}

/** Whether another stroke may start without breaking the backend's limits. */
export function canStartStroke(strokes: readonly Stroke[]): boolean {
  return strokes.length < MAX_STROKES && countPoints(strokes) < MAX_POINTS;
}

/**
 * Adds `point` to the last stroke unless it is within `minDistance` of the previous point or the
 * drawing is full. Returns whether the point was kept.
 */
export function appendPoint(strokes: Stroke[], point: Point, minDistance = MIN_POINT_DISTANCE): boolean {
  const stroke = strokes[strokes.length - 1];
  if (!stroke || countPoints(strokes) >= MAX_POINTS) return false;
  const last = stroke[stroke.length - 1];
  if (last && Math.hypot(point.x - last.x, point.y - last.y) < minDistance) return false;
  stroke.push(point);
  return true;
}

export function hasInk(strokes: readonly Stroke[]): boolean {
  return strokes.some((s) => s.length > 0);
}

/** Rounds to 0.1 px: smaller messages, and the model cannot tell the difference. */
function round1(v: number): number {
  return Math.round(v * 10) / 10;
}

/** Strokes -> the API's drawing; empty strokes are dropped, coordinates re-clamped and rounded. */
export function toDrawing(strokes: readonly Stroke[], width: number, height: number): Drawing {
  return {
    strokes: strokes
      .filter((s) => s.length > 0)
      .map((s): WireStroke => [
        s.map((p) => round1(clamp(p.x, 0, width))),
        s.map((p) => round1(clamp(p.y, 0, height))),
      ]),
    width,
    height,
  };
}

/** The API's drawing -> strokes again (to re-render a finished round). */
export function fromWire(strokes: readonly WireStroke[]): Stroke[] {
  return strokes.map(([xs, ys]) => xs.map((x, i) => ({ x, y: ys[i] ?? 0 })));
}

/** The part of CanvasRenderingContext2D that drawing needs: tests pass a recording fake. */
export interface Pen {
  lineWidth: number;
  lineCap: CanvasLineCap;
  lineJoin: CanvasLineJoin;
  strokeStyle: string | CanvasGradient | CanvasPattern;
  fillStyle: string | CanvasGradient | CanvasPattern;
  clearRect(x: number, y: number, w: number, h: number): void;
  fillRect(x: number, y: number, w: number, h: number): void;
  beginPath(): void;
  moveTo(x: number, y: number): void;
  lineTo(x: number, y: number): void;
  arc(x: number, y: number, r: number, start: number, end: number): void;
  stroke(): void;
  fill(): void;
}

export interface RenderOptions {
  /** Output px per canvas unit (a thumbnail of a 400 px drawing at 100 px is 0.25). */
  scale?: number;
  lineWidth: number;
  color: string;
  background: string;
  /** Size of the target surface in output px. */
  width: number;
  height: number;
}

/** Paints strokes: a dot for a single point, round-capped polylines otherwise. */
export function renderStrokes(pen: Pen, strokes: readonly Stroke[], opts: RenderOptions): void {
  const k = opts.scale ?? 1;
  pen.clearRect(0, 0, opts.width, opts.height);
  pen.fillStyle = opts.background;
  pen.fillRect(0, 0, opts.width, opts.height);
  pen.strokeStyle = opts.color;
  pen.fillStyle = opts.color;
  pen.lineWidth = opts.lineWidth * k;
  pen.lineCap = "round";
  pen.lineJoin = "round";
  for (const stroke of strokes) {
    const [first, ...rest] = stroke;
    if (!first) continue;
    pen.beginPath();
    if (rest.length === 0) {
      pen.arc(first.x * k, first.y * k, (opts.lineWidth * k) / 2, 0, Math.PI * 2);
      pen.fill();
      continue;
    }
    pen.moveTo(first.x * k, first.y * k);
    for (const p of rest) pen.lineTo(p.x * k, p.y * k);
    pen.stroke();
  }
}
