// Compile-only stub for tests: mirrors the public signature of org.tensorflow.lite.Interpreter, LiteRT 1.4 (com.google.ai.edge.litert:litert).
package org.tensorflow.lite;

import java.nio.ByteBuffer;
import java.util.Map;

public final class Interpreter implements AutoCloseable {
    public static class Options {
        public Options() {}
        public Options setNumThreads(int numThreads) { return this; }
        public Options addDelegate(Delegate delegate) { return this; }
        public Options setUseXNNPACK(boolean useXNNPACK) { return this; }
    }

    public Interpreter(ByteBuffer byteBuffer, Interpreter.Options options) { throw new UnsupportedOperationException("stub"); }
    public void run(Object input, Object output) {}
    public void runForMultipleInputsOutputs(Object[] inputs, Map<Integer, Object> outputs) {}
    public void close() {}
}
