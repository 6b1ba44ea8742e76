/** Polls `check` until it returns true, at most `ms` milliseconds; whether it did. */
export async function eventually(
  check: () => Promise<boolean>,
  ms: number,
  intervalMs = 50,
): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
