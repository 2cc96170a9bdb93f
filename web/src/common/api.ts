// Requests to the intake service (the read API and POST /v1/alarms), with the page's token
// in the Authorization header, never in the URL.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly fields: { field: string; message: string }[] = [],
  ) {
    super(message);
  }
}

export class Api {
  constructor(
    private readonly base: string,
    private readonly token: string,
  ) {}

  async get<T>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("POST", path, body);
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token}` };
    const init: RequestInit = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response: Response;
    try {
      response = await fetch(this.base.replace(/\/$/, "") + path, init);
    } catch (exc) {
      throw new ApiError(0, `network: ${String(exc)}`);
    }
    if (!response.ok) {
      let message = `HTTP ${response.status}`;
      let fields: { field: string; message: string }[] = [];
      try {
        const problem = (await response.json()) as { error?: string; fields?: typeof fields };
        message = problem.error ?? message;
        fields = problem.fields ?? [];
      } catch {
        // not JSON: the status says enough
      }
      throw new ApiError(response.status, message, fields);
    }
    return (await response.json()) as T;
  }
}
