// Column blocks of a row-major matrix (kernels/columns.wgsl): write a narrow matrix into a
// block of a wide one's columns, and read such a block out. A linear layer whose weight is
// held as row chunks (lib/model/linear.ts) computes each chunk's block of y's columns apart.
// Pure copies: exact and deterministic. Each is the other's backward (its adjoint):
// the gradient of writeColumns' narrow input is readColumns of the gradient, and vice versa.
//
//   narrow: [N, c]    wide: [N, C]    block: columns [start, start + c) of wide

import type { GpuContext } from "../gpu/context.ts";
import { Params } from "../gpu/params.ts";
import { shapeString, type Tensor } from "../gpu/tensor.ts";
import source from "../../kernels/columns.wgsl" with { type: "text" };

const WORKGROUP_SIZE = 256;
const kernel = (entry: string) => ({
  name: "columns",
  source,
  entry,
  constants: { WORKGROUP_SIZE },
});

function matrixShape(op: string, name: string, t: Tensor): [rows: number, cols: number] {
  if (t.shape.length !== 2 || t.dtype !== "f32") {
    throw new Error(
      `${op}: ${name} must be f32 [N, columns], got ${t.dtype} ${shapeString(t.shape)}`,
    );
  }
  return [t.shape[0], t.shape[1]];
}

function checkBlock(op: string, start: number, columns: number, wide: number): void {
  if (!Number.isInteger(start) || start < 0 || start + columns > wide) {
    throw new Error(
      `${op}: columns [${start}, ${start + columns}) do not lie within the ${wide} columns of ` +
        "the wide matrix",
    );
  }
}

/**
 * narrow: [N, c], wide: [N, C] → wide[:, start : start + c] = narrow, in place; the other
 * columns of wide are left as they are.
 */
export function writeColumns(
  ctx: GpuContext,
  narrow: Tensor<"f32">,
  wide: Tensor<"f32">,
  start: number,
): void {
  const [rows, columns] = matrixShape("writeColumns", "narrow", narrow);
  const [wideRows, wideColumns] = matrixShape("writeColumns", "wide", wide);
  if (rows !== wideRows) {
    throw new Error(
      `writeColumns: narrow ${shapeString(narrow.shape)} and wide ${shapeString(wide.shape)} ` +
        "have different row counts",
    );
  }
  checkBlock("writeColumns", start, columns, wideColumns);
  ctx.dispatch(kernel("columns_write"), {
    params: new Params().u32(narrow.size).u32(columns).u32(wideColumns).u32(start),
    tensors: [narrow, wide],
    workgroups: ctx.groupsFor(narrow.size, WORKGROUP_SIZE),
  });
}

/** wide: [N, C] → narrow: [N, columns] = wide[:, start : start + columns]. */
export function readColumns(
  ctx: GpuContext,
  wide: Tensor<"f32">,
  start: number,
  columns: number,
): Tensor<"f32"> {
  const [rows, wideColumns] = matrixShape("readColumns", "wide", wide);
  checkBlock("readColumns", start, columns, wideColumns);
  const narrow = ctx.empty([rows, columns], "f32");
  ctx.dispatch(kernel("columns_read"), {
    params: new Params().u32(narrow.size).u32(columns).u32(wideColumns).u32(start),
    tensors: [wide, narrow],
    workgroups: ctx.groupsFor(narrow.size, WORKGROUP_SIZE),
  });
  return narrow;
}
