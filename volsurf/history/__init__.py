"""volsurf.history"""
