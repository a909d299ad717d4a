// Learning-rate schedule: linear warm-up from 0, then constant or cosine decay to
// min_lr_ratio · lr at the last step. Step t counts from 0; the rate used AT step t.

export interface ScheduleSettings {
  lr: number;
  schedule: "constant" | "cosine";
  warmupSteps: number;
  minLrRatio: number;
  totalSteps: number;
}

export function learningRate(step: number, s: ScheduleSettings): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  if (s.schedule === "constant") return s.lr;
  const decaySteps = Math.max(1, s.totalSteps - s.warmupSteps - 1);
  const progress = Math.min(1, (step - s.warmupSteps) / decaySteps);
  const cosine = 0.5 * (1 + Math.cos(Math.PI * progress));
  return s.lr * (s.minLrRatio + (1 - s.minLrRatio) * cosine);
}
