"""volsurf.analytics"""
