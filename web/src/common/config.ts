import type { PageConfig, Zone } from "./types";

/** Read the page's settings (no secret in them): where intake is, the optional tile layer. */
export async function loadConfig(): Promise<PageConfig> {
  const response = await fetch("/config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`config: HTTP ${response.status}`);
  return (await response.json()) as PageConfig;
}

export class Unauthorised extends Error {}

/** Read the zone (grids, places, units) from the gateway with the page's token. */
export async function loadZone(token: string): Promise<Zone> {
  const response = await fetch("/v1/zone", {
    headers: { Authorization: `Bearer ${token}` },
    cache: "no-store",
  });
  if (response.status === 401) throw new Unauthorised("unauthorised");
  if (!response.ok) throw new Error(`zone: HTTP ${response.status}`);
  return (await response.json()) as Zone;
}
