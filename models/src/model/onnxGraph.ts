// A small ONNX graph builder, shared by the serving graph (onnx.ts) and the training graph
// (train/gradientGraph.ts): nodes are appended in topological order, every value gets a unique
// name. It knows the protobuf types only, not the model.
import { onnx } from 'onnx-proto';

export type AttrValue = number | number[] | string | { float: number };

export class GraphBuilder {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  private counter = 0;

  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    return this.opMulti(opType, inputs, 1, attrs, output ? [output] : undefined)[0];
  }

  /** A node with several outputs (DynamicQuantizeLinear has three). */
  opMulti(opType: string, inputs: string[], outputCount: number, attrs: Record<string, AttrValue> = {}, outputs?: string[]): string[] {
    const id = this.counter++;
    const out = outputs ?? Array.from({ length: outputCount }, (_, k) => `${opType.toLowerCase()}_${id}${outputCount > 1 ? `_${k}` : ''}`);
    const attribute: onnx.IAttributeProto[] = Object.entries(attrs).map(([name, v]) => {
      if (Array.isArray(v)) return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: v };
      if (typeof v === 'number') return { name, type: onnx.AttributeProto.AttributeType.INT, i: v };
      if (typeof v === 'string') return { name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(v) };
      return { name, type: onnx.AttributeProto.AttributeType.FLOAT, f: v.float };
    });
    this.nodes.push({ opType, input: inputs, output: out, name: `${opType}_${this.nodes.length}`, attribute });
    return out;
  }

  /**
   * The nodes the named outputs depend on, in the order they were added (which is topological),
   * and the initializers they read: the graph for those outputs without what nothing reads.
   */
  prunedTo(outputs: string[]): { node: onnx.INodeProto[]; initializer: onnx.ITensorProto[] } {
    const wanted = new Set(outputs);
    const kept: onnx.INodeProto[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const node = this.nodes[i];
      if (!node.output!.some((o) => wanted.has(o))) continue;
      kept.push(node);
      for (const input of node.input!) wanted.add(input);
    }
    return { node: kept.reverse(), initializer: this.initializers.filter((t) => wanted.has(t.name!)) };
  }

  floatTensor(name: string, dims: number[], data: Float32Array): string {
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: bytesOf(data) });
    return name;
  }

  int8Tensor(name: string, dims: number[], data: Int8Array): string {
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.INT8, rawData: bytesOf(data) });
    return name;
  }

  int64Tensor(name: string, dims: number[], values: number[]): string {
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.INT64, rawData: bytesOf(data) });
    return name;
  }

  scalar(name: string, value: number): string {
    return this.floatTensor(name, [], Float32Array.of(value));
  }
}

/** Little-endian bytes of a typed array (rawData is little-endian by the ONNX spec, as is x64/arm64). */
function bytesOf(a: Float32Array | Int8Array | BigInt64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** A graph input or output: its name, element type and dimensions (a string is a symbolic dimension). */
export function valueInfo(name: string, elemType: number, dims: (number | string)[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

