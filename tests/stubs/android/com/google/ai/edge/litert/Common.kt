// Compile-only stub for tests: mirrors the public Kotlin API of com.google.ai.edge.litert (Accelerator, JniHandle, TensorBuffer, Environment, LiteRtException, Status), LiteRT 2.1 (com.google.ai.edge.litert:litert:2.1.5), checked against github.com/google-ai-edge/LiteRT tag v2.1.5, litert/kotlin/src/main/kotlin/com/google/ai/edge/litert/{Common,TensorBuffer,Environment,LiteRtException}.kt. Bodies throw.
package com.google.ai.edge.litert

import java.util.concurrent.atomic.AtomicBoolean

enum class Accelerator private constructor(val value: Int) {
    NONE(0),
    CPU(1),
    GPU(2),
    NPU(3),
}

abstract class JniHandle internal constructor(internal val handle: Long) : AutoCloseable {
    private val destroyed = AtomicBoolean(false)

    protected fun assertNotDestroyed() {
        if (destroyed.get()) throw IllegalStateException("The handle has been destroyed.")
    }

    protected abstract fun destroy()

    override final fun close() {
        if (destroyed.compareAndSet(false, true)) destroy()
    }
}

class TensorBuffer internal constructor(handle: Long) : JniHandle(handle) {
    @Throws(LiteRtException::class) fun writeInt(data: IntArray) { throw UnsupportedOperationException("stub") }
    @Throws(LiteRtException::class) fun writeFloat(data: FloatArray) { throw UnsupportedOperationException("stub") }
    @Throws(LiteRtException::class) fun writeInt8(data: ByteArray) { throw UnsupportedOperationException("stub") }
    @Throws(LiteRtException::class) fun writeBoolean(data: BooleanArray) { throw UnsupportedOperationException("stub") }
    @Throws(LiteRtException::class) fun writeLong(data: LongArray) { throw UnsupportedOperationException("stub") }
    @Throws(LiteRtException::class) fun readInt(): IntArray = throw UnsupportedOperationException("stub")
    @Throws(LiteRtException::class) fun readFloat(): FloatArray = throw UnsupportedOperationException("stub")
    @Throws(LiteRtException::class) fun readInt8(): ByteArray = throw UnsupportedOperationException("stub")
    @Throws(LiteRtException::class) fun readBoolean(): BooleanArray = throw UnsupportedOperationException("stub")
    @Throws(LiteRtException::class) fun readLong(): LongArray = throw UnsupportedOperationException("stub")

    protected override fun destroy() {}
}

class Environment private constructor(handle: Long) : JniHandle(handle) {
    enum class Option private constructor(val value: Int) {
        CompilerPluginLibraryDir(0),
        DispatchLibraryDir(1),
        SystemRuntimeHandle(23),
    }

    @Throws(LiteRtException::class)
    fun getAvailableAccelerators(): Set<Accelerator> = throw UnsupportedOperationException("stub")

    override protected fun destroy() {}

    companion object {
        @Throws(LiteRtException::class)
        @JvmOverloads
        @JvmStatic
        fun create(options: Map<Option, String> = mapOf()): Environment = throw UnsupportedOperationException("stub")

        @Throws(LiteRtException::class)
        @JvmOverloads
        @JvmStatic
        fun create(
            npuAcceleratorProvider: NpuAcceleratorProvider,
            options: Map<Option, String> = mapOf(),
        ): Environment = throw UnsupportedOperationException("stub")
    }
}

class LiteRtException(private val status: Status, message: String) : Exception(message) {
    constructor(code: Int, message: String) : this(Status.ErrorUnknown, message)
}

enum class Status(val code: Int) {
    Ok(0),
    ErrorInvalidArgument(1),
    ErrorMemoryAllocationFailure(2),
    ErrorRuntimeFailure(3),
    ErrorMissingInputTensor(4),
    ErrorUnsupported(5),
    ErrorNotFound(6),
    ErrorTimeoutExpired(7),
    ErrorWrongVersion(8),
    ErrorUnknown(9),
}
