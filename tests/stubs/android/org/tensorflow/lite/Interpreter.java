// Compile-only stub for tests: mirrors the public signature of org.tensorflow.lite.Interpreter as LiteRT 2.1 ships it (com.google.ai.edge.litert:litert:2.1.5, "Interpreter (CPU only)"), checked against github.com/google-ai-edge/LiteRT tag v2.1.5, litert/kotlin/src/copied_from_tflite/java/org/tensorflow/lite/{Interpreter,InterpreterApi}.java. The 2.x package leaves out Delegate, the GPU and NNAPI delegates: Options has no addDelegate.
package org.tensorflow.lite;

import java.io.File;
import java.nio.ByteBuffer;
import java.util.Map;

public final class Interpreter implements AutoCloseable {
    public static class Options {
        public Options() {}
        public Options setUseXNNPACK(boolean useXNNPACK) { return this; }
        public Options setNumThreads(int numThreads) { return this; }
        public Options setCancellable(boolean allow) { return this; }
    }

    public Interpreter(File modelFile) { throw new UnsupportedOperationException("stub"); }
    public Interpreter(File modelFile, Options options) { throw new UnsupportedOperationException("stub"); }
    public Interpreter(ByteBuffer byteBuffer) { throw new UnsupportedOperationException("stub"); }
    public Interpreter(ByteBuffer byteBuffer, Options options) { throw new UnsupportedOperationException("stub"); }
    public void run(Object input, Object output) { throw new UnsupportedOperationException("stub"); }
    public void runForMultipleInputsOutputs(Object[] inputs, Map<Integer, Object> outputs) {
        throw new UnsupportedOperationException("stub");
    }
    public int getInputTensorCount() { throw new UnsupportedOperationException("stub"); }
    public int getOutputTensorCount() { throw new UnsupportedOperationException("stub"); }
    public void close() {}
}
