// Compile-only stub for tests: mirrors the public Kotlin API of com.google.ai.edge.litert (CompiledModel, Options, CpuOptions, GpuOptions, TensorType), LiteRT 2.1 (com.google.ai.edge.litert:litert:2.1.5), checked against github.com/google-ai-edge/LiteRT tag v2.1.5, litert/kotlin/src/main/kotlin/com/google/ai/edge/litert/Model.kt. Only what generated code may use; bodies throw.
package com.google.ai.edge.litert

import android.content.res.AssetManager

/** The type of a tensor, including its element type and layout. */
data class TensorType
@JvmOverloads
constructor(val elementType: ElementType, val layout: Layout? = null) {
    enum class ElementType { INT, FLOAT, INT8, BOOLEAN, INT64 }

    data class Layout @JvmOverloads constructor(val dimensions: List<Int>, val strides: List<Int> = listOf()) {
        val rank: Int
            get() = dimensions.size
        val hasStrides: Boolean
            get() = strides.isNotEmpty()
    }
}

class CompiledModel private constructor(handle: Long) : JniHandle(handle) {
    data class CpuOptions constructor(
        val numThreads: Int? = null,
        val xnnPackFlags: Int? = null,
        val xnnPackWeightCachePath: String? = null,
    )

    data class GpuOptions constructor(
        val constantTensorSharing: Boolean? = null,
        val infiniteFloatCapping: Boolean? = null,
        val allowSrcQuantizedFcConvOps: Boolean? = null,
        val precision: Precision? = null,
        val bufferStorageType: BufferStorageType? = null,
        val preferTextureWeights: Boolean? = null,
        val serializationDir: String? = null,
        val modelCacheKey: String? = null,
        val serializeProgramCache: Boolean? = null,
        val serializeExternalTensors: Boolean? = null,
        val externalTensorsMode: Boolean? = null,
        val externalTensorPattern: String? = null,
        val backend: Backend? = null,
        val priority: Priority? = null,
        val numStepsOfCommandBufferPreparations: Int? = null,
    ) {
        enum class Precision constructor(val value: Int) { DEFAULT(0), FP16(1), FP32(2) }
        enum class BufferStorageType constructor(val value: Int) { DEFAULT(0), BUFFER(1), TEXTURE_2D(2) }
        enum class Backend constructor(val value: Int) {
            AUTOMATIC(0),
            OPENCL(1),
            @Deprecated("Use AUTOMATIC instead.") WEBGPU(2),
            OPENGL(3),
        }
        enum class Priority constructor(val value: Int) { DEFAULT(0), LOW(1), NORMAL(2), HIGH(3) }
    }

    class Options constructor(internal val accelerators: Set<Accelerator>) {
        constructor(vararg accelerators: Accelerator) : this(setOf(*accelerators)) {}

        var cpuOptions: CpuOptions? = null
        var gpuOptions: GpuOptions? = null

        companion object {
            @JvmStatic val CPU = Options(Accelerator.CPU)
        }
    }

    @Throws(LiteRtException::class)
    fun createInputBuffer(inputName: String, signature: String = ""): TensorBuffer = throw UnsupportedOperationException("stub")

    @Throws(LiteRtException::class)
    fun createOutputBuffer(outputName: String, signature: String = ""): TensorBuffer = throw UnsupportedOperationException("stub")

    @Throws(LiteRtException::class)
    @JvmOverloads
    fun createInputBuffers(signatureIndex: Int = 0): List<TensorBuffer> = throw UnsupportedOperationException("stub")

    @Throws(LiteRtException::class)
    fun createInputBuffers(signature: String): List<TensorBuffer> = throw UnsupportedOperationException("stub")

    @Throws(LiteRtException::class)
    @JvmOverloads
    fun createOutputBuffers(signatureIndex: Int = 0): List<TensorBuffer> = throw UnsupportedOperationException("stub")

    @Throws(LiteRtException::class)
    fun createOutputBuffers(signature: String): List<TensorBuffer> = throw UnsupportedOperationException("stub")

    @Throws(LiteRtException::class)
    @JvmOverloads
    fun run(inputs: List<TensorBuffer>, signatureIndex: Int = 0): List<TensorBuffer> = throw UnsupportedOperationException("stub")

    @Throws(LiteRtException::class)
    fun run(inputs: List<TensorBuffer>, signature: String): List<TensorBuffer> = throw UnsupportedOperationException("stub")

    @Throws(LiteRtException::class)
    @JvmOverloads
    fun run(inputs: List<TensorBuffer>, outputs: List<TensorBuffer>, signatureIndex: Int = 0) {
        throw UnsupportedOperationException("stub")
    }

    @Throws(LiteRtException::class)
    fun run(inputs: List<TensorBuffer>, outputs: List<TensorBuffer>, signature: String) {
        throw UnsupportedOperationException("stub")
    }

    @Throws(LiteRtException::class)
    fun run(inputs: Map<String, TensorBuffer>, outputs: Map<String, TensorBuffer>, signature: String = "") {
        throw UnsupportedOperationException("stub")
    }

    @Throws(LiteRtException::class)
    fun getInputTensorType(inputName: String, signature: String = ""): TensorType = throw UnsupportedOperationException("stub")

    @Throws(LiteRtException::class)
    fun getOutputTensorType(outputName: String, signature: String = ""): TensorType = throw UnsupportedOperationException("stub")

    protected override fun destroy() {}

    companion object {
        @Throws(LiteRtException::class)
        @JvmOverloads
        @JvmStatic
        fun create(
            assetManager: AssetManager,
            assetName: String,
            options: Options = Options.CPU,
            optionalEnv: Environment? = null,
        ): CompiledModel = throw UnsupportedOperationException("stub")

        @Throws(LiteRtException::class)
        @JvmOverloads
        @JvmStatic
        fun create(
            filePath: String,
            options: Options = Options.CPU,
            optionalEnv: Environment? = null,
        ): CompiledModel = throw UnsupportedOperationException("stub")
    }
}
