import type { JSX } from "preact";
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { toNumber, type BanTimeline } from "../api/client";
import { formatCount, formatTime } from "../format";

const BAN_COLOR = "#a4161a";
const UNBAN_COLOR = "#1f5fa8";
const HEIGHT = 220;

/** The server's buckets as uPlot's columns: the middle of each bucket (seconds), bans, unbans. */
function columnsOf(timeline: BanTimeline): uPlot.AlignedData {
  const buckets = timeline.buckets ?? [];
  const half = (timeline.bucketSeconds ?? 3600) / 2;
  return [
    buckets.map((bucket) => new Date(bucket.startTime ?? 0).getTime() / 1000 + half),
    buckets.map((bucket) => toNumber(bucket.bans)),
    buckets.map((bucket) => toNumber(bucket.unbans)),
  ];
}

/**
 * Bans and unbans per bucket as bars (uPlot on a canvas). The canvas is an image to assistive technology, described by
 * its totals; the numbers themselves are in the table below it.
 */
export function TimelineChart(props: { timeline: BanTimeline; label: string }): JSX.Element {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<uPlot | undefined>(undefined);
  const data = columnsOf(props.timeline);
  const buckets = props.timeline.buckets ?? [];
  const bans = buckets.reduce((sum, bucket) => sum + toNumber(bucket.bans), 0);
  const unbans = buckets.reduce((sum, bucket) => sum + toNumber(bucket.unbans), 0);
  const bucketSeconds = props.timeline.bucketSeconds ?? 3600;
  useEffect(() => {
    const element = box.current;
    if (element === null) return;
    // Bans and unbans side by side in each bucket, either side of its middle.
    const banBars = uPlot.paths.bars?.({ size: [0.4, 24], align: -1 });
    const unbanBars = uPlot.paths.bars?.({ size: [0.4, 24], align: 1 });
    chart.current = new uPlot({
      width: Math.max(320, element.clientWidth),
      height: HEIGHT,
      legend: { show: false },
      cursor: { show: false },
      // From the start of the first bucket to the end of the last (still filling) one.
      scales: { x: { time: true, range: (_u, min, max) => [min - bucketSeconds / 2, max + bucketSeconds / 2] }, y: { range: (_u, _min, max) => [0, Math.max(4, max)] } },
      axes: [
        { stroke: "#4a5563", grid: { stroke: "#e2e6ec" } },
        { stroke: "#4a5563", grid: { stroke: "#e2e6ec" }, values: (_u, ticks) => ticks.map((tick) => (Number.isInteger(tick) ? String(tick) : "")) },
      ],
      series: [
        {},
        { label: "Bans", stroke: BAN_COLOR, width: 0, fill: BAN_COLOR, paths: banBars, points: { show: false } },
        { label: "Unbans", stroke: UNBAN_COLOR, width: 0, fill: UNBAN_COLOR, paths: unbanBars, points: { show: false } },
      ],
    }, data, element);
    const resize = new ResizeObserver(() => chart.current?.setSize({ width: Math.max(320, element.clientWidth), height: HEIGHT }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.current?.destroy();
      chart.current = undefined;
    };
  }, [bucketSeconds]);
  useEffect(() => chart.current?.setData(data), [props.timeline]);
  return (
    <figure class="chart">
      <div ref={box} role="img" aria-label={`${formatCount(bans)} bans and ${formatCount(unbans)} unbans ${props.label}`} />
      <figcaption>
        <span class="key key-ban">Bans ({formatCount(bans)})</span> <span class="key key-unban">Unbans ({formatCount(unbans)})</span>
        <details>
          <summary>Numbers</summary>
          <table>
            <caption class="visually-hidden">Bans and unbans per period</caption>
            <thead><tr><th scope="col">From</th><th scope="col" class="number">Bans</th><th scope="col" class="number">Unbans</th></tr></thead>
            <tbody>
              {buckets.filter((bucket) => toNumber(bucket.bans) + toNumber(bucket.unbans) > 0).map((bucket) => (
                <tr key={bucket.startTime}><td>{formatTime(bucket.startTime)}</td><td class="number">{formatCount(bucket.bans)}</td><td class="number">{formatCount(bucket.unbans)}</td></tr>
              ))}
            </tbody>
          </table>
        </details>
      </figcaption>
    </figure>
  );
}
