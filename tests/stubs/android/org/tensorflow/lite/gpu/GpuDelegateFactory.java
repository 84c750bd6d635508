// Compile-only stub for tests: mirrors the public signature of org.tensorflow.lite.gpu.GpuDelegateFactory (Options), LiteRT 1.4 (com.google.ai.edge.litert:litert-gpu-api).
package org.tensorflow.lite.gpu;

public class GpuDelegateFactory {
    public static class Options {
        public Options() {}
    }
}
