import { t } from "./i18n";

/** Return a duration in whole seconds as "42 s", "3 min 05 s" or "2 h 04 min". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}${t("time.s")}`;
  if (s < 3600) return `${Math.floor(s / 60)}${t("time.min")}${String(s % 60).padStart(2, "0")}${t("time.s")}`;
  return `${Math.floor(s / 3600)}${t("time.h")}${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}${t("time.min")}`;
}

export function secondsSince(iso: string | null | undefined, now: number = Date.now()): number | null {
  if (!iso) return null;
  return (now - Date.parse(iso)) / 1000;
}

export function clock(iso: string | null | undefined): string {
  if (!iso) return "—";
  return new Date(iso).toLocaleTimeString(undefined, { hour12: false });
}

/** Great-circle metres between two points (the routing stage's formula, near enough). */
export function distanceM(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const r = 6371008.8;
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const x = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * r * Math.asin(Math.sqrt(x));
}

/** Initial bearing from a to b in degrees from north, and its compass point. */
export function bearing(a: { lat: number; lon: number }, b: { lat: number; lon: number }): [number, string] {
  const rad = Math.PI / 180;
  const y = Math.sin((b.lon - a.lon) * rad) * Math.cos(b.lat * rad);
  const x = Math.cos(a.lat * rad) * Math.sin(b.lat * rad) -
    Math.sin(a.lat * rad) * Math.cos(b.lat * rad) * Math.cos((b.lon - a.lon) * rad);
  const deg = (Math.atan2(y, x) / rad + 360) % 360;
  const points = ["N", "NE", "E", "SE", "S", "SW", "W", "NW"];
  const zh = ["北", "东北", "东", "东南", "南", "西南", "西", "西北"];
  const i = Math.round(deg / 45) % 8;
  return [deg, document.documentElement.lang === "en" ? points[i]! : zh[i]!];
}

export function metres(m: number): string {
  return m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(1)} km`;
}
